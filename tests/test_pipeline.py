"""The pipeline end to end: `grm run --config configs/tiny.yaml` (shrunk by --set so it runs in a few minutes),
then the caching behaviour users rely on: an identical rerun is all Cached, an evaluate-only change reruns
only evaluate, an RL change reruns rl and everything after it, and nothing upstream."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Store

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["curate", "bootstrap", "rft_sample", "rft_train", "rl", "metarm_data", "metarm_train", "judge", "evaluate"]

# configs/tiny.yaml with every size shrunk: the same stages and code, minutes instead of ten.
SMALL = [
    "data.miniworld.train_items=24",
    "data.miniworld.eval_items=16",
    "bootstrap.corpus_items=1200",
    "bootstrap.corpus_tasks=null",  # the judged families only: 120 steps learn their format, not five families'
    "bootstrap.hidden_size=64",
    "bootstrap.heads=1",
    "bootstrap.layers=2",
    "bootstrap.intermediate_size=128",
    "bootstrap.train={learning_rate: 3.0e-3, batch_size: 16, per_device_batch_size: 16, max_steps: 120}",
    "rft.n_samples=6",  # the barely trained model parses ~8% of its outputs: enough samples that some are accepted
    "rft.train={learning_rate: 1.0e-3, batch_size: 4, per_device_batch_size: 4, max_steps: 2, save_steps: 1}",
    # a large RL step, so that a different beta gives visibly different judgments downstream
    "rl.train={learning_rate: 2.0e-2, batch_size: 8, per_device_batch_size: 8, max_steps: 3, save_steps: 1}",
    "rl.easy_filter_samples=2",
    "metarm.fresh_samples=1",
    "metarm.train={learning_rate: 1.0e-3, batch_size: 8, per_device_batch_size: 8, max_steps: 2, save_steps: 1}",
    "judge.k_max=4",
]


def grm_run(store: Path, home: Path, *extra: str, overrides=SMALL) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "flows.cli", "run", "--config", "configs/tiny.yaml", "--store", str(store)]
    for o in overrides:
        cmd += ["--set", o]
    return subprocess.run(cmd + list(extra), cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


def states(proc: subprocess.CompletedProcess) -> dict[str, str]:
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    tail = proc.stdout.split("\nrun ", 1)[1]
    return dict(re.findall(r"^\s+(\w+)\s+(\w+)$", tail, re.M))


IMPORTED = [("imported-1", "Which is larger, 7 or 3?", "7", "3"), ("imported-2", "Spell cat.", "c-a-t", "d-o-g")]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    base = tmp_path_factory.mktemp("pipeline")
    store, home = base / "store", base / "prefect"
    first = grm_run(store, home)
    return store, home, states(first)


def test_first_run_completes_every_stage_and_writes_every_table(pipeline):
    store_dir, _, first = pipeline
    assert first == {s: "Completed" for s in STAGES}
    store = Store(store_dir)
    for table in ("items", "quarantine", "rft_samples", "rl_log", "metarm_data", "judgments", "results", "runs"):
        assert store.table(table) is not None, table
    for model in ("base", "rft", "grm", "metarm"):
        assert store.newest("models", model) is not None, model
    assert list(Path(store.newest("files", "plots").path).glob("*.png"))
    results = store.read_rows(store.table("results"))
    methods = {(r["method"], r["k"]) for r in results if r["benchmark"] == "miniworld"}
    assert {("greedy", 1), ("voting", 1), ("voting", 4)} <= methods
    samples = [j for j in store.read_rows(store.table("judgments")) if j["decoding"] == "sample"]
    parsed = [j for j in samples if j["parse_status"] == "ok"]
    assert all(j["meta_score"] is not None for j in parsed)  # the meta RM scored every parsed sample
    if parsed:  # metaRM@k needs parsed samples to rank (a barely trained model may have none)
        assert ("metarm", 4) in methods
    runs = store.read_rows(store.table("runs"))
    assert [r["stage"] for r in runs] == STAGES and not any(r["cache_hit"] for r in runs)




def test_identical_rerun_is_all_cached(pipeline):
    store_dir, home, _ = pipeline
    again = states(grm_run(store_dir, home))
    assert again == {s: "Cached" for s in STAGES}
    runs = Store(store_dir).read_rows(Store(store_dir).table("runs"))
    assert [r["cache_hit"] for r in runs[-len(STAGES):]] == [True] * len(STAGES)


def test_a_moved_store_keeps_its_cache(pipeline, tmp_path):
    """Cache keys hold content, not the store's folder: a store copied elsewhere, then moved again (the folder it
    was copied to is gone), reruns nothing, and a cached stage hands the next one its artifacts in the new folder
    (a forced evaluate reads the judgments of the Cached judge there)."""
    store_dir, home, _ = pipeline
    copied, moved = tmp_path / "copied", tmp_path / "moved"
    shutil.copytree(store_dir, copied, symlinks=True)
    copied.rename(moved)
    assert states(grm_run(moved, home)) == {s: "Cached" for s in STAGES}
    got = states(grm_run(moved, home, "--only", "judge", "--only", "evaluate", "--force", "evaluate"))
    assert got == {"judge": "Cached", "evaluate": "Completed"}
    store = Store(moved)
    judgments = store.table("judgments")
    assert judgments.path.startswith(str(moved))
    assert store.manifest(store.table("results"))["input_hashes"]["judgments"] == judgments.content_hash


def test_another_store_never_uses_this_stores_cache(pipeline, tmp_path):
    """Each store keeps its own results and records which keys completed on it: an empty store with the same
    config, even holding a copy of the first store's Prefect results, runs its stages."""
    store_dir, home, _ = pipeline
    other = tmp_path / "other"
    shutil.copytree(store_dir / ".prefect", other / ".prefect")
    assert states(grm_run(other, home, "--only", "curate")) == {"curate": "Completed"}
    assert Store(other).table("items").path.startswith(str(other))


def test_evaluate_setting_reruns_only_evaluate(pipeline):
    store_dir, home, _ = pipeline
    got = states(grm_run(store_dir, home, overrides=SMALL + ["evaluate.k_meta_alternatives=[1]"]))
    assert got == {**{s: "Cached" for s in STAGES}, "evaluate": "Completed"}


def test_rl_beta_reruns_rl_and_everything_after_it(pipeline):
    """rl and the stages that read its model rerun; a later stage reruns when the content of its input
    changed, and is Cached when its input came out byte-identical (content-addressed cache keys)."""
    store_dir, home, _ = pipeline
    store = Store(store_dir)
    before = {t: store.table(t).content_hash for t in ("metarm_data", "judgments")}
    got = states(grm_run(store_dir, home, overrides=SMALL + ["rl.beta=0.02"]))
    upstream = ["curate", "bootstrap", "rft_sample", "rft_train"]
    assert {s: got[s] for s in upstream} == {s: "Cached" for s in upstream}
    assert (got["rl"], got["metarm_data"], got["judge"]) == ("Completed",) * 3
    after = {t: store.table(t).content_hash for t in ("metarm_data", "judgments")}
    expect = lambda t: "Cached" if after[t] == before[t] else "Completed"
    assert got["metarm_train"] == expect("metarm_data") and got["evaluate"] == expect("judgments")
    manifest = store.manifest(store.newest("models", "grm"))
    assert manifest["extra"]["cache_key"] != ""  # the new model records the run that made it


def test_only_and_force_run_single_stages_on_the_store(pipeline):
    store_dir, home, _ = pipeline
    got = states(grm_run(store_dir, home, "--only", "evaluate", "--force", "evaluate"))
    assert got == {"evaluate": "Completed"}


def test_an_imported_set_is_curated_and_judged(pipeline):
    """`grm data import` then `grm run`: curate (the one writer of items) takes the import in, judge judges it."""
    store_dir, home, _ = pipeline
    mine = store_dir.parent / "mine.jsonl"
    mine.write_text("".join(json.dumps({"id": i, "query": q, "chosen": c, "rejected": r}) + "\n" for i, q, c, r in IMPORTED))
    imp = subprocess.run([sys.executable, "-m", "flows.cli", "data", "import", "--format", "generic", "--name", "mine",
                          "--split", "eval", "--store", str(store_dir), str(mine)], cwd=ROOT, capture_output=True, text=True)
    assert imp.returncode == 0, imp.stderr
    got = states(grm_run(store_dir, home, "--only", "data", "--only", "evaluation"))
    assert got == {"curate": "Completed", "judge": "Completed", "evaluate": "Completed"}
    store = Store(store_dir)
    items = [i for i in store.read_rows(store.table("items")) if i["source"] == "mine"]
    assert len(items) == len(IMPORTED) and {i["split"] for i in items} == {"eval"}
    judged = {j["item_id"] for j in store.read_rows(store.table("judgments"))}
    assert {i["item_id"] for i in items} <= judged


def test_only_a_stage_whose_input_is_missing_says_what_to_run(tmp_path):
    proc = grm_run(tmp_path / "empty", tmp_path / "prefect", "--only", "judge")
    assert proc.returncode == 2
    assert "needs 'items'" in proc.stderr and "run stage 'curate' first" in proc.stderr


def test_a_failing_stage_ends_with_one_clear_line(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data:\n  sources:\n    - {name: x, format: judgebench, paths: [/nonexistent/x.jsonl], split: eval}\n")
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "HF_HUB_OFFLINE": "1"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "--config", str(cfg), "--store", str(tmp_path / "s"),
                           "--only", "curate"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "grm run: failed: SourceReadError: /nonexistent/x.jsonl" in proc.stderr


def test_a_stage_code_version_covers_the_child_programs_it_runs():
    """Trainers and the vLLM worker run as other processes (no import shows them); editing one must still
    rerun the stages that launch it, and only those."""
    from tasks.cache_keys import code_modules

    trainer = {"rft_train": "sft", "rl": "grpo", "metarm_train": "metarm"}
    for stage, own in trainer.items():
        mods = code_modules(f"tasks.{stage}")
        assert f"grm.training.{own}" in mods
        assert not {f"grm.training.{t}" for t in trainer.values() if t != own} & mods.keys()
    assert "grm.training.sft" not in code_modules("tasks.bootstrap")  # the bootstrap trains in-process
    for stage in ("rft_sample", "judge"):
        assert {"grm.generation.vllm_worker", "grm.generation.vllm_cli"} <= code_modules(f"tasks.{stage}").keys()
