"""The openai backend against `transformers serve` (which rejects `n`: k requests per prompt instead) and
against a small local HTTP server that fails transiently (retries with backoff) or for good (clear error);
the API key is sent but never shown."""

import os
import sys
from pathlib import Path

import pytest

from grm.config import OpenAIConfig
from grm.generation import BackendError, Request, SamplingParams
from grm.generation.openai_backend import OpenAIBackend
from grm.generation.server import ManagedServer, free_port
from tests.fake_chat_server import ChatHandler, chat_server
from tests.tiny_lm import build_tiny_lm

CHAT = lambda s: [{"role": "user", "content": s}]


@pytest.fixture(scope="module")
def transformers_serve(tmp_path_factory):
    model = str(build_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm", max_positions=512))
    port = free_port()
    exe = Path(sys.executable).with_name("transformers")
    home = tmp_path_factory.mktemp("hf_home")
    (home / "hub").mkdir()
    server = ManagedServer([str(exe), "serve", model, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                           port, env={"HF_HOME": str(home)}, startup_s=180, name="transformers-serve")
    yield model, server
    server.stop()


def test_k_samples_per_prompt_from_transformers_serve(transformers_serve):
    model, server = transformers_serve
    cfg = OpenAIConfig(base_url=server.base_url, model=model, concurrency=2)
    with OpenAIBackend(model, cfg) as backend:
        reqs = [Request("a", CHAT("judge the answer"), 3, 5), Request("b", CHAT("code"), 2, 9)]
        res = backend.generate(reqs, SamplingParams(temperature=1.0, max_new_tokens=8))
        assert backend._supports_n is False  # transformers serve answers 422 to n > 1
    assert [len(r.samples) for r in res] == [3, 2]
    assert [s.seed for s in res[0].samples] == [5, 6, 7]
    assert all(s.n_tokens > 0 for r in res for s in r.samples)


class Flaky(ChatHandler):
    """Answers 503 to the first `fail` calls, then a chat completion echoing the seed."""

    fail = 0

    def reply(self, body):
        if type(self).fail > 0:
            type(self).fail -= 1
            return 503, []
        return 200, [f"seed {body['seed']} #{i}" for i in range(body.get("n", 1))]


@pytest.fixture
def flaky():
    with chat_server(Flaky) as served:
        yield served


def test_retries_transient_errors_and_sends_the_key_without_showing_it(flaky, monkeypatch):
    _, url = flaky
    monkeypatch.setenv("JUDGE_KEY", "sk-secret-123")
    Flaky.fail = 2
    cfg = OpenAIConfig(base_url=url, model="m", api_key_env="JUDGE_KEY", max_retries=3)
    with OpenAIBackend("m", cfg) as backend:
        res = backend.generate([Request("a", CHAT("hi"), 2, 11)], SamplingParams(max_new_tokens=4))
    assert [s.text for s in res[0].samples] == ["seed 11 #0", "seed 11 #1"]  # one request with n=2
    assert len(Flaky.calls) == 3 and all(c["auth"] == "Bearer sk-secret-123" for c in Flaky.calls)
    assert "sk-secret" not in repr(cfg) and "sk-secret" not in repr(backend.__dict__)

    Flaky.fail = 99
    with OpenAIBackend("m", OpenAIConfig(base_url=url, model="m", api_key_env="JUDGE_KEY", max_retries=1)) as backend:
        with pytest.raises(BackendError) as e:
            backend.generate([Request("a", CHAT("hi"), 1, 0)], SamplingParams(max_new_tokens=4))
    assert "failed after 2 attempts: HTTP 503: overloaded" in str(e.value) and "sk-secret" not in str(e.value)


def test_missing_key_variable_is_named():
    os.environ.pop("NO_SUCH_KEY_VAR", None)
    with pytest.raises(BackendError, match="'NO_SUCH_KEY_VAR', which is not set"):
        OpenAIBackend("m", OpenAIConfig(base_url="http://127.0.0.1:9/v1", api_key_env="NO_SUCH_KEY_VAR"))
