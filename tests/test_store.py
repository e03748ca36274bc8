import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from storage import NoArtifact, Store
from storage.schemas import RESULTS, TABLES

ROOT = Path(__file__).resolve().parents[1]


def result_rows(n, value=50.0):
    return [
        {"benchmark": "b", "subset": f"s{i % 3}", "method": "voting", "k": 8, "k_meta": None, "metric": "accuracy",
         "value": value, "n": i, "model": "grm"}
        for i in range(n)
    ]


def test_published_artifact_has_manifest_with_provenance(tmp_path):
    store = Store(tmp_path)
    ref = store.write_table("results", result_rows(10), config_hash="c0ffee", input_hashes={"judgments": "abc"})
    man = store.manifest(ref)
    assert man["rows"] == 10 and man["content_hash"] == ref.content_hash
    assert man["config_hash"] == "c0ffee" and man["input_hashes"] == {"judgments": "abc"}
    assert man["schema_version"] >= 1 and "pyarrow" in man["library_versions"] and "torch" in man["library_versions"]
    assert store.read_table(ref).num_rows == 10
    assert store.newest("tables", "results") == ref


def test_same_content_same_hash_different_content_different_hash(tmp_path):
    store = Store(tmp_path)
    a = store.write_table("results", result_rows(5))
    b = store.write_table("results", result_rows(5))
    c = store.write_table("results", result_rows(5, value=51.0))
    assert a.content_hash == b.content_hash != c.content_hash
    assert store.newest("tables", "results") == c


def test_streaming_writer_rotates_parts_and_keeps_an_empty_table_readable(tmp_path):
    store = Store(tmp_path)
    with store.writer("results", part_rows=4) as w:
        for i in range(3):
            w.write_rows(result_rows(5))
    assert w.rows == 15 and len(store.parquet_files(w.ref)) == 4
    with store.writer("results") as w2:
        pass
    assert w2.rows == 0 and store.read_table(w2.ref).schema == RESULTS


def test_exception_inside_writer_publishes_nothing(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(RuntimeError):
        with store.writer("results") as w:
            w.write_rows(result_rows(3))
            raise RuntimeError("boom")
    assert store.newest("tables", "results") is None
    assert not any((tmp_path / ".tmp").iterdir())


def test_every_table_has_a_schema():
    assert set(TABLES) >= {"items", "quarantine", "rft_samples", "rl_log", "metarm_data", "judgments", "results", "runs"}


WRITER = r"""
import sys, time
from storage import Store
from tests.test_store import result_rows
store = Store(sys.argv[1])
with store.writer("results", part_rows=1000) as w:
    for i in range(100000):
        w.write_rows(result_rows(1000))
        if i == 2:
            print("writing", flush=True)
        time.sleep(0.01)
"""


@pytest.mark.reliability
def test_killed_writer_leaves_previous_artifact_and_no_half_artifact(tmp_path):
    store = Store(tmp_path)
    before = store.write_table("results", result_rows(7))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == b"writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store.list("tables", "results") == [before]  # nothing half-written is visible
    assert store.read_table(store.newest("tables", "results")).num_rows == 7
    staged = list((tmp_path / ".tmp").iterdir())
    assert staged and any(p.suffix == ".parquet" for d in staged for p in d.iterdir())  # the debris is private
    assert store.gc_tmp(older_than_s=0) == len(staged)


def test_require_names_the_missing_artifact(tmp_path):
    with pytest.raises(NoArtifact, match="model 'grm' has no artifact"):
        Store(tmp_path).require("models", "grm")


def test_publish_folder_for_models(tmp_path):
    store = Store(tmp_path)
    d = store.staging_folder()
    (d / "config.json").write_text(json.dumps({"a": 1}))
    ref = store.publish_folder("models", "grm", d, config_hash="x")
    assert Path(ref.path, "config.json").is_file() and store.manifest(ref)["rows"] is None
    assert store.newest("models", "grm") == ref


def test_metarm_base_resolves_to_the_configured_model(tmp_path):
    """models.metarm_base: unset -> the bootstrapped base; 'rft' -> the pipeline's RFT model (a cache input)."""
    from grm.config import load_config
    from tasks.runner import resolve_inputs
    from tasks.stages import get_stage

    root = Path(__file__).resolve().parents[1]
    store = Store(tmp_path / "store")
    refs = {}
    for name in ("base", "rft"):
        folder = store.staging_folder()
        (folder / "config.json").write_text(json.dumps({"model": name}))
        refs[name] = store.publish_folder("models", name, folder)
    store.write_table("metarm_data", [{"item_id": "a", "sample_idx": 0, "text": "t", "label": 1, "origin": "grm",
                                       "split": "train"}])
    spec = get_stage("metarm_train")
    default = resolve_inputs(spec, load_config(root / "configs" / "tiny.yaml"), store, {})
    assert default["metarm_base"] == refs["base"]
    rft = resolve_inputs(spec, load_config(root / "configs" / "tiny.yaml", ["models.metarm_base=rft"]), store, {})
    assert rft["metarm_base"] == refs["rft"]


def test_a_metarm_base_folder_resolves_against_the_config_folder(tmp_path):
    """models.metarm_base as a folder relative to the config: the meta RM starts from that folder wherever the
    command runs (the path handed to the stage is the resolved one, and its fingerprint enters the cache key)."""
    import os

    from grm.config import load_config
    from tasks.runner import resolve_inputs
    from tasks.stages import get_stage

    root = Path(__file__).resolve().parents[1]
    folder = tmp_path / "my-meta-base"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model": "x"}))
    rel = os.path.relpath(folder, root / "configs")
    store = Store(tmp_path / "store")
    store.write_table("metarm_data", [{"item_id": "a", "sample_idx": 0, "text": "t", "label": 1, "origin": "grm",
                                       "split": "train"}])
    cfg = load_config(root / "configs" / "tiny.yaml", [f"models.metarm_base={rel}"])
    ref = resolve_inputs(get_stage("metarm_train"), cfg, store, {})["metarm_base"]
    assert ref.kind == "external" and Path(ref.path) == folder


FAILPOINT_WRITER = r"""
import sys
from storage import Store
from tests.test_store import write_in_parts
write_in_parts(Store(sys.argv[1]))
"""


def write_in_parts(store: Store):
    with store.writer("results", part_rows=1000) as w:  # five parts
        w.write_rows(result_rows(5000, value=9.0))
    return w.ref


def killed_at(point: str, args: list[str], tmp_path: Path, timeout: float = 120) -> str:
    """Run a child that stops at ``point`` (grm/failpoints.py), SIGKILL it there; the marker it left."""
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRM_FAILPOINT": point, "GRM_FAILPOINT_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert marker.exists(), f"the child never reached {point}: " + proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return marker.read_text()


@pytest.mark.reliability
@pytest.mark.parametrize("point", ["store.write/results#3", "store.publish/results", "store.published/results"])
def test_a_kill_at_each_publishing_step_leaves_the_old_or_the_whole_new_artifact(point, tmp_path):
    """Mid-Parquet-write (a part without its footer), staged but not renamed, renamed: a reader sees the
    previous artifact or the complete new one, never a part of it; verify names only the private debris."""
    root = tmp_path / "store"
    store = Store(root)
    before = store.write_table("results", result_rows(7))
    clean = write_in_parts(Store(tmp_path / "clean"))
    assert killed_at(point, ["-c", FAILPOINT_WRITER, str(root)], tmp_path).startswith(point.split("#")[0])
    newest = store.newest("tables", "results")
    report = store.verify()
    if point.startswith("store.published"):
        assert newest.content_hash == clean.content_hash and report.ok
    else:
        assert newest == before and store.read_table(newest).num_rows == 7
        assert [p.kind for p in report.problems] == [".tmp"]  # only the dead writer's staging, named
        assert store.gc_tmp(older_than_s=0) == 1
    again = write_in_parts(store)  # the rerun
    assert again.content_hash == clean.content_hash and store.verify().ok
