"""Management commands of the demo project."""
