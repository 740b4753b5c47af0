"""Support staff in the Django admin: find a user's Smartcar account and act on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.helpers import PASSWORD, Page, expect
from tests.factories import UserFactory
from vehicle_auth.models import SmartcarAccount

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_finds_the_account_by_email_and_refreshes_its_tokens(
    page: Page, user: Any, link_account: Callable[..., Any], smartcar_sandbox: Any
) -> None:
    account = link_account(user)
    other = link_account(UserFactory(username="bob"), email="2-vehicles@smartcar.com")
    staff = UserFactory(username="support", is_staff=True, is_superuser=True)
    refresh_before = account.refresh_token

    page.goto("/admin/")
    page.get_by_label("Username").fill(staff.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Smartcar accounts").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)

    page.locator("input#searchbar").fill(user.email)
    page.locator("input#searchbar").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(user.username)
    expect(rows.first).to_contain_text(account.smartcar_user_id)

    rows.first.locator("input.action-select").check()
    page.locator("select[name=action]").select_option(label="Refresh tokens now")
    page.get_by_role("button", name="Go").click()

    success = page.locator(".messagelist .success")
    expect(success).to_have_count(1)
    expect(success).to_contain_text(account.smartcar_user_id)
    expect(success).to_contain_text("tokens refreshed")
    expect(page.locator(".messagelist .error")).to_have_count(0)
    assert smartcar_sandbox.request_count("token", detail="refresh_token") == 1
    account.refresh_from_db()
    assert account.last_refreshed_at is not None
    assert account.refresh_token != refresh_before
    other.refresh_from_db()
    assert other.last_refreshed_at is None  # only the selected account
    assert SmartcarAccount.objects.count() == 2
