"""A faithful local stand-in for Smartcar Connect, its token endpoint and the v2.0 API.

It keeps its own state in its own tables and never imports the rest of vehicle_auth:
the app and the sandbox agree only through Smartcar's documented protocol.
"""
