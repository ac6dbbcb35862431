"""Sign-in for people: sign-up, log-in and out, password change, the limit on failed log-ins (the
people's and the admin's), posting under the account's name, and keys that act as an account."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command

from chat.models import ApiKey, Message

pytestmark = pytest.mark.django_db

STRONG = "quiet-harbour-7731"


@pytest.fixture(autouse=True)
def _fresh_counters():
    """Failed log-ins are counted in the shared cache: each test starts from none."""
    cache.clear()
    yield
    cache.clear()


def signup(client, username, password1=STRONG, password2=None):
    return client.post("/accounts/signup/", {"username": username, "password1": password1,
                                             "password2": password2 or password1})


def test_sign_up_signs_in_and_posts_under_the_accounts_name(client):
    response = signup(client, "ada")
    assert response.status_code == 302 and response["Location"] == "/"
    user = get_user_model().objects.get(username="ada")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.post("/rooms/Lounge/messages", {"content": "Hello from an account"}).status_code == 303
    said = Message.objects.get(content="Hello from an account")
    assert said.author == "ada" and said.sender == f"user:{user.pk}"
    page = client.get("/").text
    assert "Log out" in page and ">ada<" in page


@pytest.mark.parametrize(("username", "password1", "password2", "sentence"), [
    ("ADA", STRONG, STRONG, "A user with that username already exists."),
    ("bea", "password", "password", "This password is too common."),
    ("bea", "12345678901", "12345678901", "This password is entirely numeric."),
    ("bea", "short1", "short1", "This password is too short."),
    ("bea", STRONG, STRONG + "x", "The two password fields didn"),
    ("PirateBot", STRONG, STRONG, "a bot&#x27;s name here"),
    ("bad name!", STRONG, STRONG, "Enter a valid username."),
])
def test_sign_up_refuses_with_a_sentence_and_saves_nothing(client, username, password1, password2, sentence):
    get_user_model().objects.create_user("ada", password=STRONG)
    response = signup(client, username, password1, password2)
    assert response.status_code == 400
    assert sentence in response.text
    assert get_user_model().objects.count() == 1
    assert "_auth_user_id" not in client.session


def test_closed_sign_up_is_not_found_and_not_offered(client, settings):
    settings.SIGNUP = "closed"
    assert client.get("/accounts/signup/").status_code == 404
    assert signup(client, "ada").status_code == 404
    assert not get_user_model().objects.exists()
    page = client.get("/accounts/login/").text
    assert "/accounts/signup/" not in page and "Log in" in page
    settings.SIGNUP = "open"
    assert "/accounts/signup/" in client.get("/accounts/login/").text


def test_log_in_log_out_and_change_password(client):
    get_user_model().objects.create_user("ada", password=STRONG)
    response = client.post("/accounts/login/", {"username": "ada", "password": STRONG})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/accounts/password_change/").status_code == 200
    response = client.post("/accounts/password_change/", {
        "old_password": STRONG, "new_password1": "lantern-moss-2290", "new_password2": "lantern-moss-2290"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password_change/done/"
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session
    assert client.get("/accounts/password_change/")["Location"].startswith("/accounts/login/")
    assert client.post("/accounts/login/", {"username": "ada", "password": STRONG}).status_code == 200  # old one: the form again
    assert client.post("/accounts/login/", {"username": "ada", "password": "lantern-moss-2290"}).status_code == 302


def test_failed_log_ins_are_limited_per_account_on_both_log_ins(client, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT, settings.LOGIN_FAILURES_PER_ADDRESS = 3, 100
    get_user_model().objects.create_user("ada", password=STRONG, is_staff=True)
    get_user_model().objects.create_user("bea", password=STRONG)
    # Failures through the admin's log-in and the people's count together, whatever the case typed.
    assert client.post("/admin/login/", {"username": "ada", "password": "wrong"}).status_code == 200
    assert client.post("/accounts/login/", {"username": "ADA", "password": "wrong"}).status_code == 200
    assert client.post("/accounts/login/", {"username": "ada", "password": "wrong"}).status_code == 200
    for path in ("/accounts/login/", "/admin/login/"):
        refused = client.post(path, {"username": "ada", "password": STRONG})  # even the right password
        assert refused.status_code == 429
        assert 0 < int(refused["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW + 1
        assert "Too many failed log-ins for this account" in refused.text
        assert "_auth_user_id" not in client.session
    # Another account from the same address is not held back.
    assert client.post("/accounts/login/", {"username": "bea", "password": STRONG}).status_code == 302


def test_failed_log_ins_are_limited_per_address(client, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT, settings.LOGIN_FAILURES_PER_ADDRESS = 100, 3
    get_user_model().objects.create_user("ada", password=STRONG)
    for name in ("x1", "x2", "x3"):
        assert client.post("/accounts/login/", {"username": name, "password": "wrong"}, REMOTE_ADDR="10.0.0.8").status_code == 200
    refused = client.post("/accounts/login/", {"username": "ada", "password": STRONG}, REMOTE_ADDR="10.0.0.8")
    assert refused.status_code == 429 and "your address" in refused.text and int(refused["Retry-After"]) > 0
    # From elsewhere the account still logs in.
    elsewhere = client.post("/accounts/login/", {"username": "ada", "password": STRONG}, REMOTE_ADDR="10.0.0.9")
    assert elsewhere.status_code == 302


def test_failed_log_ins_from_loopback_hold_no_address(client, settings):
    # Loopback is a local proxy that did not say whom it forwards for: by the one rule of every
    # count by address, it is not counted (or it would lock everyone out).
    settings.LOGIN_FAILURES_PER_ACCOUNT, settings.LOGIN_FAILURES_PER_ADDRESS = 100, 3
    get_user_model().objects.create_user("ada", password=STRONG)
    for name in ("x1", "x2", "x3", "x4"):
        assert client.post("/accounts/login/", {"username": name, "password": "wrong"}, REMOTE_ADDR="::1").status_code == 200
    assert client.post("/accounts/login/", {"username": "ada", "password": STRONG}, REMOTE_ADDR="127.0.0.1").status_code == 302


def test_create_api_key_for_a_user_and_without_one():
    ada = get_user_model().objects.create_user("ada", password=STRONG)
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "Ada's script", "--user", "ada", stdout=out, stderr=err)
    key = ApiKey.objects.authenticate(out.getvalue().strip())
    assert key.user == ada and "acting as ada" in err.getvalue()
    out = io.StringIO()
    call_command("create_api_key", "Public reader", stdout=out, stderr=io.StringIO())
    assert ApiKey.objects.authenticate(out.getvalue().strip()).user is None
    with pytest.raises(CommandError, match="There is no user called 'nobody'"):
        call_command("create_api_key", "Lost", "--user", "nobody", stdout=io.StringIO(), stderr=io.StringIO())
    assert ApiKey.objects.count() == 2


def test_unknown_sign_up_and_room_creation_values_fail_the_checks(settings):
    from django.core.management.base import SystemCheckError

    settings.SIGNUP, settings.ROOM_CREATION = "maybe", "anyone"
    with pytest.raises(SystemCheckError) as failed:
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    assert "SIGNUP is 'maybe'; set it to one of: open, closed." in str(failed.value)
    assert "ROOM_CREATION is 'anyone'; set it to one of: signed_in, staff, off." in str(failed.value)
