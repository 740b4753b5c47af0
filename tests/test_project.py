"""The demo project's pages and its `setup_demo` command."""

import re
from io import StringIO

import pytest
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory

from project import views

pytestmark = pytest.mark.django_db

SANDBOX_BANNER = "Running on the Smartcar sandbox — no real cars are involved"


def sign_in(client: Client, username: str = "driver") -> None:
    client.force_login(get_user_model().objects.create_user(username))


def test_home_page_explains_the_demo_and_shows_the_sandbox_banner(client, settings) -> None:
    settings.ON_SANDBOX = True

    response = client.get("/")

    page = response.content.decode()
    assert response.status_code == 200
    assert SANDBOX_BANNER in page
    assert "You are on the sandbox" in page
    assert '<a href="/vehicles/login/">Connect a vehicle</a>' in page
    assert '<a href="/vehicles/">My vehicles</a>' in page
    assert '<a href="/accounts/login/">Sign in</a>' in page


def test_without_the_sandbox_there_is_no_banner(client, settings) -> None:
    settings.ON_SANDBOX = False

    page = client.get("/").content.decode()

    assert SANDBOX_BANNER not in page
    assert "You are on the sandbox" not in page


def test_pages_work_offline_on_a_phone(client) -> None:
    page = client.get("/").content.decode()

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<script" not in page
    assert not re.search(r"""(href|src)=["']?(https?:)?//""", page)  # nothing from elsewhere
    assert ":focus-visible" in page
    for landmark in ("<header", "<nav", "<main", "<footer"):
        assert landmark in page


def test_signed_in_header_shows_the_user_and_a_logout_post_form(client) -> None:
    sign_in(client, "ada")

    page = client.get("/").content.decode()

    assert "Signed in as <strong>ada</strong>" in page
    assert '<a href="/vehicles/">My vehicles</a>' in page
    form = re.search(r'<form method="post" action="/accounts/logout/">(.*?)</form>', page, re.S)
    assert form is not None
    assert 'name="csrfmiddlewaretoken"' in form.group(1)
    assert '<a href="/accounts/login/">Sign in</a>' not in page


def test_the_logout_form_signs_out() -> None:
    client = Client(enforce_csrf_checks=True)
    sign_in(client)
    page = client.get("/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    assert client.get("/accounts/logout/").status_code == 405  # Django 5: POST only
    response = client.post("/accounts/logout/", {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert "_auth_user_id" not in client.session


def test_sign_in_page_has_labelled_fields_and_keeps_next(client) -> None:
    response = client.get("/accounts/login/?next=/vehicles/")

    page = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_username">' in page
    assert '<label for="id_password">' in page
    assert 'id="id_username"' in page
    assert 'id="id_password"' in page
    assert '<input type="hidden" name="next" value="/vehicles/">' in page
    assert '<form method="post" action="/accounts/login/">' in page


def test_signing_in_goes_to_next(client) -> None:
    get_user_model().objects.create_user("ada", password="a-long-password")

    response = client.post(
        "/accounts/login/",
        {"username": "ada", "password": "a-long-password", "next": "/vehicles/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/vehicles/"


def test_wrong_credentials_show_an_error(client) -> None:
    response = client.post("/accounts/login/", {"username": "nobody", "password": "wrong"})

    page = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in page
    assert "Please enter a correct username and password" in page


def test_messages_are_shown() -> None:
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    request._messages = CookieStorage(request)
    messages.success(request, "Your car is linked.")

    page = views.home(request).content.decode()

    status = re.search(r'<div class="messages" role="status">(.*?)</div>', page, re.S)
    assert status is not None
    assert '<li class="success">Your car is linked.</li>' in status.group(1)


def run_setup_demo(*args: str) -> str:
    out = StringIO()
    call_command("setup_demo", *args, stdout=out)
    return out.getvalue()


def test_setup_demo_creates_the_demo_users_and_prints_how_to_sign_in(settings) -> None:
    settings.DEBUG = True

    out = run_setup_demo()

    users = get_user_model().objects
    demo, staff = users.get(username="demo"), users.get(username="staff")
    assert users.count() == 2
    assert demo.email == "demo@example.com"
    assert demo.check_password("demo-password")
    assert not demo.is_staff
    assert staff.email == "staff@example.com"
    assert staff.check_password("staff-password")
    assert staff.is_staff
    assert staff.is_superuser
    assert "http://127.0.0.1:8000" in out
    for credential in ("demo", "demo-password", "staff", "staff-password"):
        assert credential in out


def test_setup_demo_is_idempotent_and_resets_the_demo_users(settings) -> None:
    settings.DEBUG = True
    run_setup_demo()
    demo = get_user_model().objects.get(username="demo")
    demo.set_password("changed-by-a-visitor")
    demo.is_active = False
    demo.save()

    out = run_setup_demo()

    demo.refresh_from_db()
    assert get_user_model().objects.count() == 2
    assert "Updated user 'demo'" in out
    assert demo.is_active
    assert demo.check_password("demo-password")


def test_setup_demo_refuses_to_run_without_debug(settings) -> None:
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--force"):
        run_setup_demo()

    assert not get_user_model().objects.exists()


def test_setup_demo_runs_without_debug_when_forced(settings) -> None:
    settings.DEBUG = False

    run_setup_demo("--force")

    assert set(get_user_model().objects.values_list("username", flat=True)) == {"demo", "staff"}
