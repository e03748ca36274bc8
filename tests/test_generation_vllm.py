"""The vllm backend (vllm.LLM in a child process of the vLLM environment) and the openai backend against a
real `vllm serve` started from that environment. `make test` builds the environment (.venv-vllm) and sets
$GRM_VLLM_PYTHON; one engine and one server serve the whole module (each takes 30-120 s to start on CPU)."""

import os
import re
import signal
import tempfile
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

import pytest

from grm.config import GenerationConfig, OpenAIConfig, VLLMConfig
from grm.generation import BackendError, Request, SamplingParams, make_backend
from storage import Store
from tasks.sampling import BackendSpec, SamplingError, backend_for, close_backends
from tests.tiny_lm import build_tiny_lm

VLLM_PY = os.environ.get("GRM_VLLM_PYTHON") or str(Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python")  # not resolved: the venv's python is a link to the base one, which has no vllm
pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not Path(VLLM_PY).exists(), reason="no vLLM environment: run `make vllm-env` (or set GRM_VLLM_PYTHON)"),
]
# CPU settings: float32, no torch.compile warm-up (it triples the start-up time of a tiny model)
VLLM = VLLMConfig(python=VLLM_PY, dtype="float32", extra_args={"enforce_eager": True})
CHAT = lambda s: [{"role": "user", "content": s}]
PROMPTS = ["judge the answer", "a longer prompt about the helpful and harmless response score", "code"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm", max_positions=2048))


@pytest.fixture(scope="module")
def vllm_spec(model_dir):
    gen = GenerationConfig(backend="vllm", shard_size=8, vllm=VLLM)
    spec = BackendSpec(model_dir, gen, max_model_len=2048)
    backend_for(spec)  # the module's one engine, shared by the tests below through the process's backend cache
    yield spec
    close_backends()


def texts(results):
    return [[s.text for s in r.samples] for r in results]


def test_vllm_same_seed_same_samples_and_n_per_prompt(vllm_spec):
    backend = backend_for(vllm_spec)
    params = SamplingParams(temperature=1.0, max_new_tokens=12, top_p=0.95)
    reqs = [Request(f"p{i}", CHAT(t), 4, 100 + i) for i, t in enumerate(PROMPTS)]
    first, again = backend.generate(reqs, params), backend.generate(reqs, params)
    assert texts(first) == texts(again)
    assert [len(r.samples) for r in first] == [4, 4, 4] and len(set(texts(first)[0])) > 1
    assert [s.seed for s in first[1].samples] == [101, 102, 103, 104]
    other = backend.generate([Request("p0", CHAT(PROMPTS[0]), 4, 7)], params)
    assert texts(other)[0] != texts(first)[0]
    greedy = backend.generate([Request("g", CHAT(PROMPTS[0]), 2, 1)], SamplingParams(temperature=0, max_new_tokens=8))
    assert greedy[0].samples[0].text == greedy[0].samples[1].text


def test_vllm_judging_samples_with_permutations_and_skips(vllm_spec, tmp_path):
    from tests.sampling_job import run, toy_items

    items = toy_items(6)  # shards of 8 prompts of ~1000 tokens: more than one engine step's token budget
    items[2]["responses"] = ["judge " * 1200, "short"]
    out = run(str(tmp_path), vllm_spec.model_path, items=items, backend=vllm_spec.generation, close=False)
    rows = Store(tmp_path).read_rows(out.ref)
    assert len(rows) == 6 * 3 and len({(r["item_id"], r["sample_idx"]) for r in rows}) == 18
    for r in rows:
        assert sorted(r["permutation"]) == list(range(len(items[int(r["item_id"][-3:])]["responses"])))
        if r["item_id"] == "item-002":
            assert r["parse_status"] == "skipped" and r["critique"].startswith("prompt_too_long: ")
        else:
            assert r["completion"]


def test_openai_backend_against_local_vllm_serve(model_dir):
    gen = GenerationConfig(backend="openai", vllm=VLLM, openai=OpenAIConfig(serve=True, concurrency=4))
    params = SamplingParams(temperature=1.0, max_new_tokens=12)
    reqs = [Request(f"p{i}", CHAT(t), 3, 40 + i) for i, t in enumerate(PROMPTS)] + [Request("long", CHAT("judge " * 2100), 2, 0)]
    with make_backend(model_dir, gen, max_model_len=2048) as backend:
        assert backend.server is not None and backend.base_url.startswith("http://127.0.0.1:")
        first, again = backend.generate(reqs, params), backend.generate(reqs, params)
        assert backend._supports_n is True  # vLLM takes n: one request per prompt
        pid = backend.server.proc.pid
    assert [len(r.samples) for r in first[:3]] == [3, 3, 3] and texts(first) == texts(again)
    assert first[3].samples == [] and re.fullmatch(r"prompt_too_long: \d+ > 2036 tokens", first[3].skipped)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the server was stopped at close()


def test_dead_vllm_worker_fails_the_shard_with_its_log(vllm_spec, tmp_path):
    backend = backend_for(vllm_spec)
    os.killpg(backend.proc.pid, signal.SIGKILL)
    with pytest.raises(BackendError, match=r"vllm worker exited with code -9 while (idle|generating)"):
        backend.generate([Request("p", CHAT("hi"), 1, 0)], SamplingParams(max_new_tokens=4))
    from tests.sampling_job import run

    with pytest.raises(SamplingError, match=r"shards failed .*\n.*BackendError: vllm worker exited with code -9"):
        run(str(tmp_path), vllm_spec.model_path, n_items=2, backend=vllm_spec.generation, close=False)
