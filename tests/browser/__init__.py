"""Browser tests: Playwright drives Debian's Chromium through the site and the sandbox.

Constants live here, in a module that imports nothing, so that both the conftest (which
must load without Playwright) and the helpers can use them.
"""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_MISSING = (
    f"Chromium not found at {CHROMIUM}: apt-get install chromium to run the browser tests"
)
PLAYWRIGHT_MISSING = (
    "Playwright is not installed: pip install -r requirements-dev.txt to run the browser tests"
)
# Set to "required" (CI does) to turn a skipped or missing browser run into a failure.
REQUIRE_ENV = "VEHICLE_AUTH_BROWSER_TESTS"
