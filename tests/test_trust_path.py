"""The trust path: nothing read from the store or a model folder runs code, and no secret is written down. The
stage cache is JSON and a pickle planted in <store>/.prefect/results is never unpickled; model folders with
pickle-only weights are refused unless the config allows them, with a message saying how; an API key given
through the environment reaches its endpoint and no file or log."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from storage import ArtifactRef, Store
from tasks.base import StageOutput
from tests.fake_chat_server import ChatHandler, chat_server

pytestmark = pytest.mark.reliability  # the reliability campaign's CI subset (RELIABILITY.md)

ROOT = Path(__file__).resolve().parents[1]
CANARY_VAR, CANARY = "GRM_CANARY_API_KEY", "sk-canary-4f1d9e77c2a8b35e06"
RESPONSE = re.compile(r"\[Start of Response (\d+)\]\n(.*?)\n\[End of Response \1\]", re.S)


class Planted:
    """What an attacker writes into the results folder: unpickling it makes a folder (it could run anything)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def planted_record(key: str, marker: Path) -> bytes:
    """A result record exactly as Prefect writes one with result_serializer='pickle'."""
    from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
    from prefect.serializers import PickleSerializer

    meta = ResultRecordMetadata(storage_key=key, serializer=PickleSerializer())
    return ResultRecord(metadata=meta, result=Planted(marker)).serialize()


def test_a_planted_pickle_record_would_run_code_in_prefect(tmp_path):
    """The control: Prefect decodes a record with the serializer the record names, so the plant is live."""
    from prefect._internal.result_records import ResultRecord

    marker = tmp_path / "pwned"
    ResultRecord.deserialize(planted_record("k", marker))
    assert marker.exists()


def test_the_stage_cache_reads_json_records_and_ignores_a_planted_pickle(tmp_path, caplog):
    from prefect.results import ResultStore

    from flows.results import StageOutputSerializer, StageResults

    folder = tmp_path / "results"
    store = ResultStore(result_storage=StageResults(basepath=str(folder)), serializer=StageOutputSerializer())
    out = StageOutput({"items": ArtifactRef("tables", "items", "/s/tables/items/1-ab", "ab" * 32, 3)}, 5, 3, "# md",
                      {"items": 3, "k": [1, 2]})
    store.write(obj=out, key="good")
    assert json.loads((folder / "good").read_text())["metadata"]["serializer"] == {"type": "grm-stage-output-json"}
    assert store.exists("good") and store.read("good").result == out

    marker = tmp_path / "pwned"
    (folder / "bad").write_bytes(planted_record("bad", marker))
    with caplog.at_level("WARNING", logger="prefect.stage-cache"):
        assert not store.exists("bad")  # absent to Prefect: the stage reruns and overwrites it
        with pytest.raises(ValueError, match="serializer"):
            store.read("bad")
    assert not marker.exists()
    assert re.search(r"bad: written with serializer .*pickle.*the stage reruns", caplog.text)


@pytest.mark.parametrize("doc", [
    b"not json",
    b'{"metadata": {"serializer": {"type": "grm-stage-output-json"}}}',  # no result
    b'{"metadata": {"serializer": {"type": "json"}}, "result": "{}"}',  # Prefect's JSON: it imports named classes
    b'{"metadata": {"serializer": {"type": "grm-stage-output-json", "picklelib": "x"}}, "result": "{}"}',
    b'{"metadata": {"serializer": {"type": "grm-stage-output-json"}}, "result": "{}", "serializer": {"type": "pickle"}}',
])
def test_anything_but_a_stage_record_is_refused(doc):
    from flows.results import UntrustedResult, checked_record

    with pytest.raises(UntrustedResult):
        checked_record("f", doc)


def test_a_stage_record_with_a_bad_result_fails_validation_without_running_anything():
    from flows.results import StageOutputSerializer

    with pytest.raises(ValueError):
        StageOutputSerializer().loads(b'{"artifacts": {"items": {"__class__": "os.system", "data": "true"}}}')


class Judge(ChatHandler):
    """An OpenAI-compatible endpoint that scores responses holding GOOD 9 and the others 2."""

    def reply(self, body):
        shown = [r for _, r in RESPONSE.findall(body["messages"][-1]["content"])]
        box = ", ".join("9" if "GOOD" in r else "2" for r in shown)
        return 200, [f"Specific Criteria: correctness.\nAnalysis: checked.\nScores: \\boxed{{{box}}}"] * body.get("n", 1)


def forms(secret: str) -> list[bytes]:
    """The secret as bytes, and base64-encoded at each of the three alignments (as inside an encoded blob)."""
    raw = secret.encode()
    return [raw] + [base64.b64encode(b"x" * i + raw)[4 if i else 0:][:len(raw)] for i in range(3)]


def files_holding(root: Path, secret: str) -> list[str]:
    needles = forms(secret)
    return [str(p) for p in root.rglob("*") if p.is_file() and any(n in p.read_bytes() for n in needles)]


def test_the_scan_finds_the_key_raw_or_inside_base64(tmp_path):
    for i, blob in enumerate([b"k=" + CANARY.encode(), base64.b64encode(b"pickle" + CANARY.encode()),
                              base64.b64encode(b"pickled" + CANARY.encode() + b"!")]):
        (tmp_path / f"f{i}").write_bytes(blob)
    (tmp_path / "clean").write_bytes(base64.b64encode(b"nothing secret here at all"))
    assert sorted(Path(p).name for p in files_holding(tmp_path, CANARY)) == ["f0", "f1", "f2"]


def test_a_run_on_a_store_with_a_planted_pickle_runs_no_code_and_leaks_no_api_key(tmp_path):
    """End to end, `grm run` (curate, then rft_sample from an OpenAI-compatible endpoint: the openai backend on a
    local server) with a canary API key in the environment, on a store where curate ran before and its cached
    result was replaced by a malicious pickle, at the key the run looks up.

    The pickle is never unpickled (curate reruns and overwrites it with a JSON record); the key reaches the
    server and nothing else: not the store (Parquet, manifests, work folders, the stage cache), not Prefect's
    database (its artifacts, logs, run parameters), not the run's output."""
    from grm.config import load_config
    from tasks.runner import execute, prepare
    from tasks.stages import get_stage

    data = tmp_path / "items.jsonl"
    data.write_text("".join(f'{{"id": "{i}", "query": "question {i}", "chosen": "GOOD {i}", "rejected": "bad {i}"}}\n'
                            for i in range(4)))
    home, store = tmp_path / "prefect", Store(tmp_path / "store")
    with chat_server(Judge) as (_, url):
        cfg_path = tmp_path / "cfg.yaml"
        cfg_path.write_text(
            f"data:\n  sources:\n    - {{name: mine, format: generic, paths: [{data}], split: train}}\n"
            f"rft:\n  sampler: {{base_url: '{url}', model: teacher-v1, api_key_env: {CANARY_VAR}}}\n"
            "  n_samples: 2\n  hinted: false\n"
            "generation: {max_new_tokens: 32, shard_size: 2}\n"
        )
        cfg = load_config(cfg_path)
        prepared = prepare(get_stage("curate"), cfg, store, {})
        execute(prepared, cfg, store)  # curate ran on this store before: its outputs are here, so its cache is read
        results, marker = store.root / ".prefect" / "results", tmp_path / "pwned"
        results.mkdir(parents=True)
        (results / prepared.cache_key).write_bytes(planted_record(prepared.cache_key, marker))

        env = {**os.environ, "PREFECT_HOME": str(home), "HF_HUB_OFFLINE": "1", CANARY_VAR: CANARY}
        env.pop("PREFECT_API_URL", None)
        proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--config", str(cfg_path), "--store",
                               str(store.root), "--only", "curate", "--only", "rft_sample"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    # the plant: read where a cached curate would be, reported, never run; curate rebuilt and its record rewritten
    assert not marker.exists()
    assert re.search(r"^\s+curate\s+Completed$", proc.stdout, re.M)
    assert f"stage cache: ignoring {results / prepared.cache_key}: written with serializer" in output
    record = json.loads((results / prepared.cache_key).read_text())
    assert record["metadata"]["serializer"] == {"type": "grm-stage-output-json"}
    assert StageOutput.from_json(record["result"]).artifacts["items"].rows == 4
    # the key: used, and written nowhere
    assert Judge.calls and all(c["auth"] == f"Bearer {CANARY}" for c in Judge.calls)
    assert len(store.read_rows(store.table("rft_samples"))) == 4 * 2
    assert list(home.rglob("*.db")), "Prefect's database (artifacts, logs, run records) is where the scan expects it"
    leaks = files_holding(store.root, CANARY) + files_holding(home, CANARY)
    assert not leaks, f"the canary key was written to {leaks}"
    assert not any(n.decode() in output for n in forms(CANARY))


# ---- models ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pickle_only_model(tmp_path_factory):
    """The tiny LM with its weights as pytorch_model.bin (a pickle) and no safetensors."""
    import torch
    from safetensors.torch import load_file

    from tests.tiny_lm import build_tiny_lm

    folder = build_tiny_lm(tmp_path_factory.mktemp("binmodel") / "lm")
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


def test_a_pickle_only_model_folder_is_refused_saying_how_to_allow_it(pickle_only_model):
    from grm.config import GenerationConfig
    from grm.generation import BackendError, make_backend
    from grm.model_loading import ModelTrust, pretrained_kwargs

    for backend in ("hf", "vllm"):
        with pytest.raises(BackendError, match=r"pytorch_model\.bin.*models\.allow_pickle: true"):
            make_backend(str(pickle_only_model), GenerationConfig(backend=backend, device="cpu"))
    with pytest.raises(ValueError, match="allow_pickle"):  # the trainers' and the meta RM's loading
        pretrained_kwargs(pickle_only_model, ModelTrust())
    allowed = make_backend(str(pickle_only_model), GenerationConfig(device="cpu"), trust=ModelTrust(allow_pickle=True))
    assert allowed.model.num_parameters() > 0


def test_grm_score_refuses_a_pickle_only_model_in_one_line(pickle_only_model):
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "score", "--model", str(pickle_only_model), "--device", "cpu",
                           "--query", "q", "--response", "a"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert re.search(r"grm score: model .* has only pickle weights .*--allow-pickle", proc.stderr)


def test_models_load_with_safetensors_only_and_no_remote_code_unless_the_config_allows(tmp_path):
    from grm.config import VLLMConfig, parse_config
    from grm.generation.server import vllm_engine_args
    from grm.model_loading import ModelTrust, pretrained_kwargs
    from tasks.sampling import backend_spec

    cfg = parse_config({})
    assert ModelTrust.of(cfg.models) == ModelTrust(False, False)
    assert pretrained_kwargs(tmp_path, ModelTrust()) == {"use_safetensors": True, "trust_remote_code": False}
    engine = vllm_engine_args(VLLMConfig(), 512, "float32")
    assert engine["load_format"] == "safetensors" and "trust_remote_code" not in engine
    allowed = parse_config({"models": {"allow_pickle": True, "trust_remote_code": True}})
    spec = backend_spec(allowed, ArtifactRef("models", "x", str(tmp_path), "h"))
    assert spec.trust == ModelTrust(True, True)
    engine = vllm_engine_args(VLLMConfig(), 512, "float32", spec.trust)
    assert "load_format" not in engine and engine["trust_remote_code"] is True
