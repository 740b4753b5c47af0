"""Benchmarks of vehicle_auth: `make bench` runs them all (bench/run_all.py)."""
