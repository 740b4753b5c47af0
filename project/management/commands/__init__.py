"""Management commands of the demo project: `setup_demo`."""
