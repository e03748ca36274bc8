"""`grm eval`: any model on benchmark files in one command, through the pipeline's own judge and evaluate stages
(cached), printing each benchmark's official number, greedy, voting@k and metaRM@k with intervals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Store

ROOT = Path(__file__).resolve().parents[1]


def grm(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


def test_eval_any_model_on_rm_bench_and_judgebench_then_cached(shared_data, tiny_model_dir, tmp_path):
    store, home = tmp_path / "store", tmp_path / "prefect"
    cmd = ["eval", "--model", str(tiny_model_dir), "--format", "rm_bench", "--data", str(shared_data / "rm_bench/data"),
           "--format", "judgebench", "--data", str(shared_data / "judgebench/data"), "--k", "2", "--per-subset", "1",
           "--max-new-tokens", "6", "--store", str(store)]
    first = grm(*cmd, home=home)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    table = first.stdout.split("\nbenchmark", 1)[1]
    assert "official" in table and "voting@2" in table
    assert any(line.startswith("rm_bench") for line in table.splitlines())
    assert any(line.startswith("judgebench") for line in table.splitlines())
    rows = Store(store).read_rows(Store(store).table("results"))
    official = {r["benchmark"] for r in rows if r["metric"] == "official" and r["subset"] == "all"}
    assert {"rm_bench", "judgebench"} <= official
    judged = Store(store).read_rows(Store(store).table("judgments"))
    assert {j["model"] for j in judged} == {str(tiny_model_dir.resolve())}
    # JudgeBench pairs are judged greedily in both orders (its two games)
    jb = {j["item_id"] for j in judged if j["decoding"] == "greedy" and j["sample_idx"] == 1}
    assert jb and all(len(j["permutation"]) == 2 for j in judged if j["item_id"] in jb)

    again = grm(*cmd, home=home)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "curate Cached, judge Cached, evaluate Cached" in again.stdout


@pytest.mark.parametrize("args, message", [
    (["--format", "nope", "--data", "."], "unknown format 'nope'"),
    (["--format", "judgebench", "--data", "/no/such/file.jsonl"], "--data /no/such/file.jsonl: no such file"),
    (["--format", "judgebench", "--data", ".", "--format", "rm_bench"], "give one --format per --data"),
])
def test_eval_refuses_bad_input_in_one_line(tmp_path, tiny_model_dir, args, message):
    proc = grm("eval", "--model", str(tiny_model_dir), *args, "--store", str(tmp_path / "s"), home=tmp_path / "p")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_eval_names_a_missing_model_and_a_dead_endpoint(tmp_path):
    data = ["--format", "judgebench", "--data", str(tmp_path)]
    missing = grm("eval", "--model", "./no-such-model", *data, "--store", str(tmp_path / "s"), home=tmp_path / "p")
    assert missing.returncode == 2 and "--model ./no-such-model: no such folder" in missing.stderr
    dead = grm("eval", "--model", "openai:http://127.0.0.1:9/v1", *data, "--store", str(tmp_path / "s"), home=tmp_path / "p")
    assert dead.returncode == 2 and "the endpoint does not answer" in dead.stderr and "Traceback" not in dead.stderr


def test_a_bare_model_name_is_a_store_model_unless_a_model_folder_has_that_name(tmp_path, monkeypatch):
    import argparse

    from flows.cli_eval import eval_config

    (tmp_path / "grm").mkdir()  # the project's own package folder, in the project root
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)

    def judge(model: str, meta: str | None = None) -> dict:
        args = argparse.Namespace(format=["judgebench"], data=[[str(tmp_path)]], k=2, model=model, meta_rm=meta,
                                  served_model=None, backend="hf", max_new_tokens=8, per_subset=None, seed=0)
        return eval_config(args)["judge"]

    assert judge("grm", "metarm")["models"] == ["grm"] and judge("grm", "metarm")["meta_rm"] == "metarm"
    assert judge("mine")["models"] == [str((tmp_path / "mine").resolve())]
    assert judge("./grm")["models"] == [str((tmp_path / "grm").resolve())]  # an explicit path stays a path
    with pytest.raises(ValueError, match="--meta-rm ./gone: no such folder"):
        judge("grm", "./gone")


def test_score_and_the_grpo_example_resolve_a_bare_name_by_the_same_rule(tmp_path, monkeypatch):
    from flows.cli_score import _model_path  # also the policy and GRM of examples/grm_reward_grpo.py

    (tmp_path / "grm").mkdir()  # no config.json: not a model folder
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="'grm' is neither a model folder .* nor a model in the store"):
        _model_path("grm", str(tmp_path / "store"), "GRM")
    assert _model_path("mine", str(tmp_path / "store"), "GRM") == str((tmp_path / "mine").resolve())
    with pytest.raises(ValueError, match="policy ./gone: no such folder"):
        _model_path("./gone", str(tmp_path / "store"), "policy")
