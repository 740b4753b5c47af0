"""What a person does in the browser: sign in, go through Connect, read and tab through pages.

Every step waits through Playwright's auto-waiting locators and `expect`, never a sleep.
"""

from __future__ import annotations

import re

import pytest

from tests.browser import PLAYWRIGHT_MISSING

try:
    from playwright.sync_api import Locator, Page, expect
except ImportError:  # requirements-dev.txt installs it; a bare `pip install .` does not
    pytest.skip(PLAYWRIGHT_MISSING, allow_module_level=True)

PASSWORD = "password"  # tests.factories.UserFactory's
THREE_CARS = "3-vehicles@smartcar.com"
VEHICLES_URL = re.compile(r"/vehicles/$")


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the site's own login form; lands on /vehicles/ (LOGIN_REDIRECT_URL)."""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(VEHICLES_URL)


def sign_in_to_connect(page: Page, *, email: str = THREE_CARS, make: str = "CHEVROLET") -> None:
    """From the Connect preamble, through the brand list and the brand's login form."""
    page.locator("button#continue-button").click()
    page.locator(f"button#{make}.brand-list-item").click()
    page.locator("input#username").fill(email)
    page.locator("input#password").fill("any password works in test mode")
    page.locator("button#sign-in-button").click()


def vehicle_boxes(page: Page) -> Locator:
    """The grant screen's vehicle checkboxes (waits for the grant screen)."""
    expect(page.locator(".page-content button#approval-button")).to_be_visible()
    return page.locator(".page-content input[name=vehicle]")


def listed_vehicles(page: Page) -> list[str]:
    """The cars /vehicles/ lists, as people read them ("2019 Chevrolet Volt")."""
    return [
        " ".join(text.split())
        for text in page.locator("ul.vehicles .vehicle-name").all_inner_texts()
    ]


# --- reading a page as an auditor -------------------------------------------------------

# The focused element and whether a sighted keyboard user can see where focus is: an
# outline (our pages draw 3 px) or a box shadow, on an element inside the viewport.
FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return {element: "body", visible: false};
  const style = getComputedStyle(el);
  const rect = el.getBoundingClientRect();
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  const shadow = style.boxShadow !== "none";
  const onScreen = rect.width > 0 && rect.height > 0 && rect.right > 0 && rect.bottom > 0
    && rect.left < innerWidth && rect.top < innerHeight;
  return {
    element: el.outerHTML.slice(0, 160),
    focusVisible: el.matches(":focus-visible"),
    outline: `${style.outlineStyle} ${style.outlineWidth}`,
    visible: el.matches(":focus-visible") && (outline || shadow) && onScreen,
  };
}"""


def press_and_load(page: Page, key: str = "Enter") -> None:
    """Press a key that submits a form or follows a link, and wait for the new page."""
    with page.expect_navigation():
        page.keyboard.press(key)


def tab_to(page: Page, selector: str, *, limit: int = 40) -> None:
    """Press Tab until `selector` has focus; focus must be visible at every stop on the way.

    An element already focused (autofocus, as on the sign-in form) needs no Tab. Past the
    last element focus leaves the page for the browser's own controls: that stop is skipped.
    """
    for _ in range(limit + 1):
        focus = page.evaluate(FOCUS_STATE)
        if focus["element"] != "body":
            assert focus["visible"], f"invisible focus on {page.url}: {focus}"
            if page.evaluate("s => document.activeElement.matches(s)", selector):
                return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} not reached in {limit} Tab presses on {page.url}")


# Problems a person would meet on the page: language, title, headings, landmarks, labels,
# text contrast (WCAG 2.2 AA: 4.5:1, 3:1 for large text) and horizontal scrolling.
AUDIT = """() => {
  const problems = [];
  const visible = el => el.getClientRects().length > 0
    && getComputedStyle(el).visibility !== "hidden";
  const describe = el => el.outerHTML.slice(0, 120);
  if (!document.documentElement.lang) problems.push("<html> has no lang");
  if (!document.title.trim()) problems.push("no <title>");
  const h1s = [...document.querySelectorAll("h1")].filter(visible);
  if (h1s.length !== 1) problems.push(`${h1s.length} visible <h1> (want 1)`);
  if (document.querySelectorAll("main").length !== 1) problems.push("not exactly one <main>");
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth)
    problems.push(`scrolls sideways: ${document.documentElement.scrollWidth}px wide`
      + ` in ${document.documentElement.clientWidth}px`);
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const named = el.labels.length || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby");
    if (!named) problems.push(`unlabelled control ${describe(el)}`);
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (visible(el) && !(el.innerText.trim() || el.getAttribute("aria-label")))
      problems.push(`control without text ${describe(el)}`);
  }
  for (const el of document.querySelectorAll("img")) {
    if (!el.hasAttribute("alt")) problems.push(`image without alt ${describe(el)}`);
  }
  const rgba = text => {
    const m = text.match(/[\\d.]+/g).map(Number);
    return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1];
  };
  const blend = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat(1);
  };
  const background = el => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] >= 1) break;
    }
    let result = [255, 255, 255, 1];
    for (const layer of layers.reverse()) result = blend(layer, result);
    return result;
  };
  const luminance = c => {
    const [r, g, b] = c.slice(0, 3).map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  for (const el of document.querySelectorAll("body *")) {
    const hasText = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!hasText || !visible(el)) continue;
    const style = getComputedStyle(el);
    const back = background(el);
    const fore = blend(rgba(style.color), back);
    const [hi, lo] = [luminance(fore), luminance(back)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5))
      problems.push(`contrast ${ratio.toFixed(2)}:1 for ${describe(el)}`);
  }
  return problems;
}"""


def audit(page: Page) -> list[str]:
    """What is wrong with the page for its readers (empty: nothing found)."""
    return [f"{page.url}: {problem}" for problem in page.evaluate(AUDIT)]
