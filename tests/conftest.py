"""Fixtures shared by the suite: factories as fixtures, and the sandbox on a live server."""

pytest_plugins = ["vehicle_auth.sandbox.pytest_plugin"]
