"""`grm run --only judge --only evaluate` with a tiny GRM on the real benchmark files: every subset of
RM-Bench, JudgeBench, LLMBar and EvalBiasBench gets complete result rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from storage import Store

ROOT = Path(__file__).resolve().parents[1]


def test_judge_and_evaluate_on_real_benchmarks_give_rows_for_every_subset(shared_data, tiny_model_dir, tmp_path):
    store = Store(tmp_path / "store")
    staged = store.staging_folder()
    for f in Path(tiny_model_dir).iterdir():
        (staged / f.name).write_bytes(f.read_bytes())
    store.publish_folder("models", "grm", staged)  # the tiny GRM stands in for a trained one
    sources = [
        {"name": "rm_bench", "format": "rm_bench", "paths": [str(shared_data / "rm_bench/data")], "split": "eval"},
        {"name": "judgebench", "format": "judgebench", "paths": [str(shared_data / "judgebench/data")], "split": "eval"},
        {"name": "llmbar", "format": "llmbar", "paths": [str(shared_data / "llmbar/Dataset")], "split": "eval"},
        {"name": "evalbiasbench", "format": "evalbiasbench",
         "paths": [str(shared_data / "evalbiasbench/data/evalbiasbench/biasbench.json")], "split": "eval"},
    ]
    cfg = {
        "models": {"base": str(tiny_model_dir), "max_length": 1024},
        "data": {"sources": sources},
        "generation": {"backend": "hf", "max_new_tokens": 8, "device": "cpu"},
        "judge": {"models": ["grm"], "k_max": 2, "meta_scores": False, "per_subset": 2},
    }
    cfg_path = tmp_path / "real.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "HF_HUB_OFFLINE": "1"}
    env.pop("PREFECT_API_URL", None)
    for only in (["curate"], ["judge", "evaluate"]):
        cmd = [sys.executable, "-m", "flows.cli", "run", "--config", str(cfg_path), "--store", str(store.root)]
        cmd += [x for s in only for x in ("--only", s)]
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    items = [i for i in store.read_rows(store.table("items")) if i["split"] == "eval"]
    rows = store.read_rows(store.table("results"))
    judged = {(r["benchmark"], r["subset"]) for r in rows if r["method"] == "greedy" and r["metric"] in ("accuracy", "avg")}
    expected = set()
    for i in items:
        subset = i["subset"]
        if i["source"] == "rm_bench":
            subset = "safety" if subset.startswith("safety") else subset
        expected.add((i["source"], subset))
    assert expected <= judged, sorted(expected - judged)
    # per_subset takes whole prompts: RM-Bench's nine style pairs of each, so its 3x3 accuracy is defined
    rm = [r for r in rows if r["benchmark"] == "rm_bench" and r["method"] == "greedy" and r["metric"] == "accuracy"]
    assert rm and all(r["value"] == r["value"] for r in rm), rm  # not NaN
    for bench in ("rm_bench", "judgebench", "llmbar", "evalbiasbench"):
        methods = {(r["method"], r["k"]) for r in rows if r["benchmark"] == bench and r["subset"] == "all"}
        assert {("greedy", 1), ("voting", 1), ("voting", 2), ("baseline:length", None)} <= methods, (bench, methods)
