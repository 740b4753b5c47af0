"""pytest fixtures for the sandbox (placeholder)."""
