"""scripts/screenshots.py still goes through the site, and the README shows its PNGs."""

from __future__ import annotations

import importlib.util
import io
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.core.management import call_command

from vehicle_auth.models import SmartcarAccount

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "screenshots.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_readme_shows_every_screenshot() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in load_script().SCREENSHOTS:
        path = ROOT / "docs" / "screenshots" / name
        assert f"](docs/screenshots/{name})" in readme
        width, height = png_size(path)
        assert width == 1000
        assert height >= 700
        assert path.stat().st_size < 250_000  # small enough to commit


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_script_captures_its_screenshots(
    browser: Any, live_server: Any, smartcar_sandbox: Any, tmp_path: Path
) -> None:
    script = load_script()
    call_command("setup_demo", force=True, stdout=io.StringIO())
    paths = script.capture(browser, live_server.url, tmp_path)
    assert [path.name for path in paths] == list(script.SCREENSHOTS)
    for path in paths:
        width, height = png_size(path)
        assert width == 1000
        assert height >= 700
    account = SmartcarAccount.objects.get(user__username="demo")
    assert account.vehicles.count() == 2  # two of three cars, as the consent shot shows
    assert account.last_refreshed_at is not None  # the admin shot runs "Refresh tokens now"
