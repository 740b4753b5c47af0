"""URLs of the sandbox; mount them at `sandbox/` so origins look like Smartcar's."""

app_name = "vehicle_auth_sandbox"

urlpatterns: list = []
