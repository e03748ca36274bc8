"""Sharded, resumable sampling (tasks/sampling.py) with the hf backend: k samples per item with their
permutations, reproducible, resumable after SIGKILL without resampling finished shards, parallel on Ray,
failed shards reported clearly with finished shards kept, over-long prompts recorded as skipped."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")

import pytest

from tests.sampling_job import run, toy_items
from storage import Store
from tasks.sampling import SamplingError
from tests.tiny_lm import build_tiny_lm

HERE = Path(__file__).parent
KEY = lambda r: (r["item_id"], r["sample_idx"])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(build_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm", max_positions=2048))


@pytest.fixture(scope="module")
def reference(model_dir, tmp_path_factory):
    store = tmp_path_factory.mktemp("ref")
    out = run(str(store), model_dir)
    return out, Store(store).read_rows(out.ref)


def shard_dir(store) -> Path:
    return Path(store) / "work" / "judge" / "testkey" / "sampling-grm-sample"


def test_k_samples_per_item_with_permutations_and_reproducible(reference, model_dir, tmp_path):
    out, rows = reference
    items = toy_items(8)
    assert out.shards == out.shards_sampled == len(list(shard_dir(out.ref.path.split("/tables/")[0]).glob("shard-*.parquet")))
    assert len(rows) == 8 * 3 and len({KEY(r) for r in rows}) == len(rows)
    for it in items:
        mine = [r for r in rows if r["item_id"] == it["item_id"]]
        assert sorted(r["sample_idx"] for r in mine) == [0, 1, 2]
        for r in mine:
            assert sorted(r["permutation"]) == list(range(len(it["responses"])))
            assert r["model"] == "grm" and r["decoding"] == "sample" and r["completion"]
    again = run(str(tmp_path), model_dir)
    assert sorted(Store(tmp_path).read_rows(again.ref), key=KEY) == sorted(rows, key=KEY)


@pytest.mark.reliability
def test_sigkill_half_way_then_rerun_resumes_without_resampling(reference, model_dir, tmp_path):
    _, ref_rows = reference
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(  # its own process group: the kill takes its children too (Prefect's temporary server)
        [sys.executable, str(HERE / "sampling_job.py"), str(tmp_path), model_dir, "threads"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    log = shard_dir(tmp_path) / "shards.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the sampling run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # as a crash of the machine: the job and everything it started
    proc.wait()
    done_before = {json.loads(l)["shard"] for l in log.read_text().splitlines()}
    assert 2 <= len(done_before) < 8
    assert not Store(tmp_path).list("tables", "judgments")  # nothing published by the killed run

    out = run(str(tmp_path), model_dir)
    entries = [json.loads(l) for l in log.read_text().splitlines()]
    resampled = [e["shard"] for e in entries[len(done_before):]]
    assert set(resampled).isdisjoint(done_before) and len(resampled) == len(set(resampled))
    assert out.shards_sampled == 8 - len(done_before) == len(resampled)
    rows = Store(tmp_path).read_rows(out.ref)
    assert sorted(rows, key=KEY) == sorted(ref_rows, key=KEY)


def test_ray_runner_runs_shards_in_parallel_and_equals_threads(reference, model_dir, tmp_path):
    _, ref_rows = reference
    out = run(str(tmp_path), model_dir, runner="ray", workers=2)
    assert sorted(Store(tmp_path).read_rows(out.ref), key=KEY) == sorted(ref_rows, key=KEY)
    log = out.shard_log
    assert len({e["pid"] for e in log}) == 2
    overlapping = [(a["shard"], b["shard"]) for a in log for b in log
                   if a["pid"] != b["pid"] and a["started"] < b["ended"] and b["started"] < a["ended"]]
    assert overlapping, log


def test_failed_shards_fail_clearly_and_finished_shards_stay(reference, model_dir, tmp_path):
    # run 1 completes; two shard files are then lost, and the rerun's backend (an OpenAI server) is down
    run(str(tmp_path), model_dir)
    files = sorted(shard_dir(tmp_path).glob("shard-*.parquet"))
    lost = [files[2], files[5]]
    for f in lost:
        f.unlink()
    kept = {f: f.stat().st_mtime_ns for f in files if f not in lost}
    from grm.config import GenerationConfig, OpenAIConfig
    from tests import sampling_job

    with pytest.raises(SamplingError) as e:
        sampling_job.run(str(tmp_path), model_dir, backend=GenerationConfig(
            backend="openai", shard_size=2, openai=OpenAIConfig(base_url="http://127.0.0.1:9/v1", model="m", max_retries=1, timeout_s=2)))
    msg = str(e.value)
    assert "2 of 8 shards failed (6 finished and kept; rerun to resume)" in msg
    assert "shard 2 " in msg and "shard 5 " in msg and "BackendError" in msg and "127.0.0.1:9" in msg
    assert {f: f.stat().st_mtime_ns for f in kept} == kept
    assert len(Store(tmp_path).list("tables", "judgments")) == 1  # only run 1's table


def test_over_long_prompt_is_recorded_as_skipped(model_dir, tmp_path):
    items = toy_items(3)
    items[1]["responses"] = ["judge " * 1200, "short"]
    out = run(str(tmp_path), model_dir, items=items, max_new_tokens=8)
    rows = Store(tmp_path).read_rows(out.ref)
    skipped = [r for r in rows if r["item_id"] == "item-001"]
    assert len(skipped) == 3 and all(r["parse_status"] == "skipped" for r in skipped)
    assert all(r["critique"].startswith("prompt_too_long: ") and r["critique"].endswith(f"> {2048 - 8} tokens") for r in skipped)
    assert out.skipped_prompts == len({r["permutation"].__str__() for r in skipped})
    assert all(r["completion"] for r in rows if r["item_id"] != "item-001")


@pytest.mark.reliability
def test_a_kill_between_a_shard_file_and_its_log_line_redoes_no_shard(reference, model_dir, tmp_path):
    """A failpoint (grm/failpoints.py): killed after the third shard's file is complete but before its log line. The rerun
    samples only the shards without a file (the log is not what decides)."""
    from tests.test_store import killed_at

    _, ref_rows = reference
    store = tmp_path / "store"
    killed_at("sampling.shard/grm-sample#3", [str(HERE / "sampling_job.py"), str(store), model_dir, "threads"], tmp_path, timeout=240)
    with_file = {int(p.name.split("-")[1]) for p in shard_dir(store).glob("shard-*.parquet")}
    assert len(with_file) == 3
    assert not Store(store).list("tables", "judgments")
    out = run(str(store), model_dir)
    logged = [json.loads(l)["shard"] for l in (shard_dir(store) / "shards.jsonl").read_text().splitlines()]
    assert len(logged) == len(set(logged)) and out.shards_sampled == 8 - len(with_file)
    assert sorted(Store(store).read_rows(out.ref), key=KEY) == sorted(ref_rows, key=KEY)
