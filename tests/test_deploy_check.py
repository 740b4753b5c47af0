"""`manage.py check --deploy` on the demo project with production settings."""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
HOST = "vehicles.example.com"


def production_env(**overrides: str) -> dict[str, str]:
    """What a production host sets, and nothing from this test run (no tests.settings)."""
    alphabet = string.ascii_letters + string.digits + string.punctuation.replace("$", "")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(60)),
        "DEBUG": "0",
        "ALLOWED_HOSTS": HOST,
        "SMARTCAR_CLIENT_ID": "7d2b54fc-4f6b-4b7c-9ed5-0f8a5e9d1c11",
        "SMARTCAR_CLIENT_SECRET": secrets.token_hex(18),
        "SMARTCAR_REDIRECT_URI": f"https://{HOST}/vehicles/callback/",
        "SMARTCAR_MODE": "live",
        "VEHICLE_AUTH_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        # Keep a developer's .env out of it: set what it might set, explicitly.
        "DATABASE_URL": "sqlite:////tmp/vehicle-auth-deploy-check.sqlite3",
    }
    env.update(overrides)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_pass_the_deploy_check() -> None:
    result = check_deploy(production_env())
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    assert "WARNINGS" not in output
    assert "ERRORS" not in output
    # The one message left is information, not a warning: the rate-limit counters of the
    # default cache are per process (README: "Rate limits").
    assert "vehicle_auth.I001" in output
    assert "System check identified 1 issue (0 silenced)" in output


def test_a_shared_cache_leaves_nothing_to_report() -> None:
    result = check_deploy(production_env(CACHE_URL="redis://127.0.0.1:6379/1"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SECRET_KEY": "short"}, "security.W009"),
        ({"SMARTCAR_MODE": "test"}, "vehicle_auth.W001"),
        ({"SECURE_SSL_REDIRECT": "0"}, "security.W008"),
        ({"CACHE_URL": "dummycache://"}, "vehicle_auth.W002"),
        ({"VEHICLE_AUTH_ENCRYPTION_KEYS": ""}, "vehicle_auth.E001"),
    ],
)
def test_the_check_has_teeth(overrides, expected) -> None:
    result = check_deploy(production_env(**overrides))

    assert result.returncode != 0
    assert expected in result.stderr
