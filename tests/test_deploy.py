"""Production settings and access: deploy checks, required settings, the admin for staff, CSRF on every POST."""

import os
import re
import secrets
import shutil
import subprocess
import sys

import pytest
import yaml

from chat.models import Message
from tests.servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def production_env(**overrides):
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"}}
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="parley.example.com")
    env.update(overrides)
    return env


def test_deploy_checks_pass_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_without_a_required_setting_says_which(missing):
    env = production_env()
    env.pop(missing)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert re.search(rf"Set {missing}\b.*required when DEBUG is off", result.stderr)


def test_the_admin_is_for_staff_only(client, django_user_model):
    assert client.get("/admin/chat/message/").status_code == 302
    user = django_user_model.objects.create_user("pat", password="pw-123-long")
    client.force_login(user)
    assert client.get("/admin/chat/message/").status_code == 302
    user.is_staff, user.is_superuser = True, True
    user.save()
    assert client.get("/admin/chat/message/").status_code == 200


def test_every_post_needs_a_csrf_token(upstream):
    from django.test import Client

    reply = Message.objects.create(room="ChatBot", bot="ChatBot", role="assistant", status="failed")
    strict = Client(enforce_csrf_checks=True)
    paths = ["/rooms/ChatBot/messages", f"/rooms/ChatBot/messages/{reply.pk}/stop", f"/rooms/ChatBot/messages/{reply.pk}/retry",
             f"/rooms/ChatBot/messages/{reply.pk}/feedback", f"/rooms/ChatBot/messages/{reply.pk}/remove",
             f"/rooms/ChatBot/messages/{reply.pk}/mute", "/profile"]
    for path in paths:
        refused = strict.post(path, {"content": "hi"})
        # Refused for the token (the out-of-date page's answer), not by the view (Stop, Retry and
        # moderation refuse strangers with a 403 too).
        assert refused.status_code == 403 and b"This page was out of date" in refused.content, path
    # The programs' endpoints take no cookie, so no token: /chat reads JSON only (a form gets 415),
    # /v1 and /api a key only.
    assert strict.post("/chat", {"content": "hi"}).status_code == 415
    assert strict.post("/v1/chat/completions", {"content": "hi"}).status_code == 401
    assert strict.post("/api/rooms/ChatBot/messages", {"content": "hi"}).status_code == 401


def test_production_refuses_a_placeholder_secret_key():
    for placeholder in ("change-me-to-a-long-random-string", "django-insecure-parley-development-only", "CHANGEME-" + "x" * 50):
        result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=production_env(SECRET_KEY=placeholder),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode != 0, placeholder
        assert "Set SECRET_KEY to a long random string of your own, not a placeholder" in result.stderr, placeholder


SECURE_WITH_PROXY_HEADER = (
    "from django.test import RequestFactory; "
    "print(RequestFactory().get('/', headers={'X-Forwarded-Proto': 'https'}).is_secure())"
)


@pytest.mark.parametrize("behind, secure", [(None, "False"), ("false", "False"), ("true", "True")])
def test_x_forwarded_proto_is_believed_only_behind_a_tls_proxy(behind, secure):
    env = production_env() if behind is None else production_env(BEHIND_TLS_PROXY=behind)
    result = subprocess.run([sys.executable, "manage.py", "shell", "--no-imports", "-c", SECURE_WITH_PROXY_HEADER], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == secure


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_compose_file_needs_a_secret_key_and_trusts_its_own_proxy_alone():
    environment = compose()["x-parley"]["environment"]
    # ${VAR:?message}: compose stops with the message when SECRET_KEY is unset or empty.
    assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]+\}", environment["SECRET_KEY"])
    assert environment["TRUST_X_FORWARDED_FOR"] == "true"
    assert environment["BEHIND_TLS_PROXY"] == "${BEHIND_TLS_PROXY:-false}"
    # The proxy sets the client's address, replacing any X-Forwarded-For the client sent, which
    # budgets would otherwise count.
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    assert "$proxy_add_x_forwarded_for" not in nginx


def test_docker_compose_config_stops_without_a_secret_key():
    if not shutil.which("docker") or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        pytest.skip("needs the docker compose client")
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Set SECRET_KEY to a long random string" in result.stderr
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    assert subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT, env=env, timeout=60).returncode == 0
