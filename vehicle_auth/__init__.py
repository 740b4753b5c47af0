"""vehicle_auth: link your site users' cars through Smartcar and keep their tokens fresh.

`from vehicle_auth import get_vehicle` gives host code a ready-to-use `smartcar.Vehicle`.
"""

from typing import Any

__all__ = ["call_vehicle", "get_vehicle"]


def __getattr__(name: str) -> Any:
    # Imported lazily: models cannot load before Django's app registry is ready.
    if name in __all__:
        from vehicle_auth import tokens

        return getattr(tokens, name)
    raise AttributeError(f"module 'vehicle_auth' has no attribute {name!r}")
