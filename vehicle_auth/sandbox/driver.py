"""Walk the sandbox's Connect screens over HTTP, as an owner would, and return the redirect.

For tests and scripts that need a real authorization code without a browser:

    url = complete_connect(auth_client.get_auth_url(scopes, {"state": state}))
    # -> "https://app.example/callback?code=...&state=..."

It reads the screens' HTML with the standard library's parser and submits their forms with
`requests`, following only the sandbox's own redirects, so the application's callback is
never called: the caller decides what to do with the returned URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

# More screens than a trip through Connect can show: a loop means something is wrong.
MAX_SCREENS = 12
# Seconds per request; the sandbox answers at once unless a fault was injected.
TIMEOUT = 30
# Elements that have no end tag, so they never close what they open.
_VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class ConnectError(Exception):
    """Connect showed an error (an error page, or a form error) instead of moving on."""

    def __init__(self, message: str, *, url: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.status_code = status_code


@dataclass
class _Control:
    """An <input> or <button> of a form, with the state a browser would submit."""

    tag: str
    attrs: dict[str, str]
    checked: bool = False

    @property
    def id(self) -> str:
        return self.attrs.get("id", "")

    @property
    def name(self) -> str:
        return self.attrs.get("name", "")

    @property
    def type(self) -> str:
        return self.attrs.get("type", "submit" if self.tag == "button" else "text").lower()

    @property
    def value(self) -> str:
        return self.attrs.get("value", "")

    @property
    def disabled(self) -> bool:
        return "disabled" in self.attrs

    @property
    def is_button(self) -> bool:
        return self.tag == "button" or self.type in {"submit", "image", "button", "reset"}


@dataclass
class _Form:
    action: str
    method: str
    controls: list[_Control] = field(default_factory=list)

    def control(self, element_id: str) -> _Control | None:
        return next((c for c in self.controls if c.id == element_id), None)

    def fields(self, clicked: _Control) -> list[tuple[str, str]]:
        """What a browser sends when `clicked` submits the form."""
        sent = []
        for control in self.controls:
            if control.disabled or not control.name:
                continue  # browsers never send disabled or nameless controls
            if control.is_button:
                if control is clicked:
                    sent.append((control.name, control.value))
            elif control.type in {"checkbox", "radio"}:
                if control.checked:
                    sent.append((control.name, control.value or "on"))
            else:
                sent.append((control.name, control.value))
        return sent


class _Page(HTMLParser):
    """The parts of a Connect screen the driver needs: its name, forms and error messages."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.screen = ""
        self.forms: list[_Form] = []
        self.alerts: list[str] = []
        self._form: _Form | None = None
        self._alert_depth = 0
        self._alert_text: list[str] = []

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs = {name: value or "" for name, value in attr_list}
        if "data-screen" in attrs and not self.screen:
            self.screen = attrs["data-screen"]
        if self._alert_depth and tag not in _VOID_ELEMENTS:
            self._alert_depth += 1
        elif attrs.get("role") == "alert" and tag not in _VOID_ELEMENTS:
            self._alert_depth = 1
            self._alert_text = []
        if tag == "form":
            self._form = _Form(attrs.get("action", ""), attrs.get("method", "get").lower())
            self.forms.append(self._form)
        elif tag in {"input", "button"} and self._form is not None:
            self._form.controls.append(_Control(tag, attrs, checked="checked" in attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        if self._alert_depth:
            self._alert_depth -= 1
            if not self._alert_depth:
                self.alerts.append(" ".join("".join(self._alert_text).split()))

    def handle_data(self, data: str) -> None:
        if self._alert_depth:
            self._alert_text.append(data)

    def form_with(self, element_id: str) -> tuple[_Form, _Control] | None:
        for form in self.forms:
            control = form.control(element_id)
            if control is not None:
                return form, control
        return None


def _screens_prefix(auth_url: str) -> str:
    """Where the sandbox serves the screens of the trip that `auth_url` starts."""
    parts = urlsplit(auth_url)
    base = parts.path.rsplit("/oauth/authorize", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/connect/", "", ""))


def _vehicle_indices(choice: int | Sequence[int] | None, count: int, single: bool) -> list[int]:
    if choice is None:
        return [0] if single and count else list(range(count))
    indices = [choice] if isinstance(choice, int) else list(choice)
    for index in indices:
        if not 0 <= index < count:
            raise ConnectError(
                f"There is no vehicle at index {index}: the account has {count} vehicle(s)."
            )
    if single and len(indices) > 1:
        raise ConnectError("Connect asks for a single vehicle (single select); give one index.")
    return indices


class _Walk:
    """One trip through the screens, with the owner's answers."""

    def __init__(
        self,
        http: requests.Session,
        *,
        email: str,
        password: str,
        make: str,
        vehicles: int | Sequence[int] | None,
        approve: bool,
        uncheck_scopes: Sequence[str],
    ) -> None:
        self.http = http
        self.email = email
        self.password = password
        self.make = make.upper()
        self.vehicles = vehicles
        self.approve = approve
        self.uncheck_scopes = (
            [uncheck_scopes] if isinstance(uncheck_scopes, str) else uncheck_scopes
        )

    def get(self, url: str) -> requests.Response:
        return self.http.get(url, allow_redirects=False, timeout=TIMEOUT)

    def click(self, response: requests.Response, page: _Page, button_id: str) -> requests.Response:
        found = page.form_with(button_id)
        if found is None:
            raise ConnectError(
                f"The {page.screen or 'unknown'} screen has no #{button_id}.", url=response.url
            )
        form, button = found
        url = urljoin(response.url, form.action or response.url)
        fields = form.fields(button)
        if form.method == "post":
            return self.http.post(url, data=fields, allow_redirects=False, timeout=TIMEOUT)
        # A GET form replaces the action's query string with its fields, as browsers do.
        url = urlunsplit(urlsplit(url)._replace(query="", fragment=""))
        return self.http.get(url, params=fields, allow_redirects=False, timeout=TIMEOUT)

    def answer(self, response: requests.Response, page: _Page) -> requests.Response:
        """Do what the owner does on this screen."""
        if page.screen == "preamble":
            return self.click(response, page, "continue-button")
        if page.screen == "brands":
            if page.form_with(self.make) is None:
                raise ConnectError(f"The brand list has no {self.make}.", url=response.url)
            return self.click(response, page, self.make)
        if page.screen == "login":
            found = page.form_with("sign-in-button")
            if found is not None:
                for element_id, value in (("username", self.email), ("password", self.password)):
                    control = found[0].control(element_id)
                    if control is not None:
                        control.attrs["value"] = value
            return self.click(response, page, "sign-in-button")
        if page.screen == "grant":
            if not self.approve:
                return self.click(response, page, "deny-button")
            found = page.form_with("approval-button")
            if found is not None:
                self.choose(found[0])
            return self.click(response, page, "approval-button")
        raise ConnectError(f"Unexpected screen {page.screen!r}.", url=response.url)

    def choose(self, form: _Form) -> None:
        """Tick the vehicles asked for and untick the scopes asked for."""
        boxes = [c for c in form.controls if c.tag == "input" and c.name == "vehicle"]
        single = any(box.type == "radio" for box in boxes)
        chosen = set(_vehicle_indices(self.vehicles, len(boxes), single))
        for index, box in enumerate(boxes):
            box.checked = index in chosen
        scopes = {c.value: c for c in form.controls if c.tag == "input" and c.name == "scope"}
        for name in self.uncheck_scopes:
            name = name.removeprefix("required:")
            box = scopes.get(name)
            if box is None:
                raise ConnectError(f"The grant screen does not ask for {name}.")
            if box.disabled:
                raise ConnectError(f"{name} is required: the owner cannot untick it.")
            box.checked = False


def complete_connect(
    auth_url: str,
    *,
    email: str = "owner@example.com",
    password: str = "password",  # noqa: S107 - the sandbox accepts any password
    make: str = "CHEVROLET",
    vehicles: int | Sequence[int] | None = None,
    approve: bool = True,
    uncheck_scopes: Sequence[str] = (),
    session: requests.Session | None = None,
) -> str:
    """Go through the sandbox's Connect from `auth_url` and return where it sends the owner.

    That is the application's `redirect_uri` with `code` and `state`, or with `error`
    (denied, a special test email, an injected fault...). `make` picks the brand unless the
    URL already names one; `vehicles` are indices into the grant screen's list (None: every
    car, or the first with single select); `uncheck_scopes` are optional permissions the
    owner unticks. Raises ConnectError when a screen shows an error instead.
    """
    walk = _Walk(
        session if session is not None else requests.Session(),
        email=email,
        password=password,
        make=make,
        vehicles=vehicles,
        approve=approve,
        uncheck_scopes=uncheck_scopes,
    )
    screens = _screens_prefix(auth_url)
    response = walk.get(auth_url)
    for _ in range(MAX_SCREENS):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if not location.startswith(screens):
                return location
            response = walk.get(location)
            continue
        page = _Page()
        page.feed(response.text)
        page.close()
        if page.alerts or response.status_code >= 400:
            message = " ".join(page.alerts) or f"HTTP {response.status_code}"
            raise ConnectError(
                f"Connect ({page.screen or 'no'} screen) says: {message}",
                url=response.url,
                status_code=response.status_code,
            )
        response = walk.answer(response, page)
    raise ConnectError(f"Connect did not finish within {MAX_SCREENS} screens.", url=response.url)
