"""Misconfiguration fails at start-up with one line naming what to set; the provider rule holds."""

import os
import subprocess
import sys

import pytest

from bots.providers import get_provider, provider_path
from bots.providers.local import LocalProvider
from bots.providers.openai import OpenAIProvider
from tests.servers import ROOT, free_port


def start_daphne(**env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_", "LOCAL_"))}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "daphne", "-p", str(free_port()), "project.asgi:application"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"LLM_PROVIDER": "openai"}, "OPENAI_API_KEY"),
        ({"LLM_PROVIDER": "bots.providers.nothing.Here"}, "LLM_PROVIDER"),
        ({"LOCAL_MODEL_PATH": "/no/such/model.gguf"}, "LOCAL_MODEL_PATH"),
    ],
)
def test_a_misconfigured_provider_stops_the_server_with_one_line(env, names):
    result = start_daphne(**env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("parley: ") and names in lines[0], result.stderr


def test_the_key_decides_unless_a_provider_is_named(settings):
    settings.LLM_PROVIDER, settings.OPENAI_API_KEY = "", ""
    assert provider_path() == "bots.providers.local.LocalProvider"
    assert isinstance(get_provider(), LocalProvider)
    settings.OPENAI_API_KEY = "sk-test"
    assert isinstance(get_provider(), OpenAIProvider)
    settings.LLM_PROVIDER = "local"
    assert isinstance(get_provider(), LocalProvider)
    settings.LLM_PROVIDER = "bots.providers.openai.OpenAIProvider"
    assert isinstance(get_provider(), OpenAIProvider)
