"""The training stages end to end on a tiny model: rft_sample -> rft_train -> rl -> metarm_data -> metarm_train.

Sampling uses a scripted judge (a deterministic Backend) so that every item's outcome is known; the
trainers are the real TRL / transformers ones, in child processes.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from grm import rules
from grm.config import parse_config
from grm.generation.base import Backend, Result, Sample
from grm.parsing import BINARY, GRADED, parse_scores
from grm.training import launch
from grm.training.grpo import read_completions
from grm.training.jobs import job_paths
from storage import Store
from tasks.runner import execute, prepare
from tasks.stages import get_stage

RESPONSE = re.compile(r"\[Start of Response (\d+)\]\n(.*?)\n\[End of Response \1\]", re.S)
HINT = re.compile(r"The best response is: Response (\d+)")


class ScriptedJudge(Backend):
    """Scores responses containing GOOD 9 and others 2; follows a hint; puts the first response shown on top
    when the query says POSBIAS; writes no box when the query says GARBLE; n = 1: 1 if GOOD else 0."""

    name = "scripted"

    def generate(self, requests, params):
        out = []
        for req in requests:
            prompt = req.messages[-1]["content"]
            shown = [body for _, body in RESPONSE.findall(prompt)]
            hint = HINT.search(prompt)
            if "GARBLE" in prompt:
                text = "Analysis: I cannot decide."
            elif len(shown) == 1:
                text = f"Scores: \\boxed{{{1 if 'GOOD' in shown[0] else 0}}}"
            elif hint:
                top = int(hint.group(1)) - 1
                text = "Scores: \\boxed{" + ", ".join("9" if j == top else "2" for j in range(len(shown))) + "}"
            elif "POSBIAS" in prompt:
                text = "Scores: \\boxed{" + ", ".join("9" if j == 0 else "2" for j in range(len(shown))) + "}"
            else:
                text = "Scores: \\boxed{" + ", ".join("9" if "GOOD" in s else "2" for s in shown) + "}"
            out.append(Result(req.prompt_id, [Sample(text, req.seed + i) for i in range(req.n)]))
        return out


def _item(iid, query, responses, best=None, rating=None, source="unit"):
    return {
        "item_id": iid, "source": source, "format": "test", "split": "train", "subset": "s",
        "conversation": [{"role": "user", "content": query}], "responses": responses,
        "label_kind": "best" if best is not None else "rating", "best": best,
        "ratings": [rating] if rating is not None else None, "meta": None,
    }


# enough steps after the first checkpoint that the kill lands mid-run on a fast machine too
RL_STEPS = 12

ITEMS = [
    *[_item(f"easy{i}", "pick", [f"GOOD {i}", f"bad {i}"], best=0) for i in range(3)],  # always right: too easy
    *[_item(f"hard{i}", "pick", [f"GOOD {i}", f"bad {i}"], best=1, source="other") for i in range(3)],  # always wrong
    *[_item(f"pos{i}", "POSBIAS", [f"r{i}a", f"r{i}b", f"r{i}c", f"r{i}d"], best=i % 4) for i in range(4)],
    _item("garble", "GARBLE", ["x", "y"], best=0),
    _item("single1", "check", ["GOOD one"], rating=1.0),
    _item("single0", "check", ["GOOD but wrong"], rating=0.0),
    _item("graded", "rate", ["meh"], rating=7.0),  # no 0/1 label: not a training item
]


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("train_stages")
    tmpl = root / "templates"
    tmpl.mkdir()
    (tmpl / "grm.txt").write_text("Judge {{conversation}}\n{{responses}}\nScores {{example_scores}}\n{{hint}}")
    (tmpl / "single.txt").write_text("Check {{conversation}}\n{{responses}}\nScores 0 or 1\n{{hint}}")
    (tmpl / "metarm.txt").write_text("{{responses}}\nJudgment: {{judgment}}")
    general = root / "general.jsonl"
    general.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}\n'
        '{"messages": [{"role": "user", "content": "sum 2 2"}, {"role": "assistant", "content": "4"}]}\n'
        '{"messages": [{"role": "assistant", "content": "no prompt"}]}\n'
    )
    small = {"per_device_batch_size": 4, "warmup_ratio": 0.0}
    cfg = parse_config(
        {
            "seed": 0,
            "models": {"base": str(tiny_model_dir), "dtype": "float32", "max_length": 256},
            "prompts": {k: str(tmpl / f"{k}.txt") for k in ("grm", "single", "metarm")},
            "generation": {"backend": "hf", "max_new_tokens": 20, "device": "cpu"},
            "rft": {"n_samples": 3, "hinted": True, "general_data": str(general), "general_ratio": 0.5, "train": {**small, "learning_rate": 3e-3, "batch_size": 8, "max_steps": 60, "save_steps": 30}},
            "rl": {"group_size": 4, "beta": 0.08, "easy_filter_samples": 3, "temperature": 1.0,
                   "train": {**small, "learning_rate": 1e-3, "batch_size": 8, "max_steps": RL_STEPS, "save_steps": 2}},
            "metarm": {"fresh_samples": 2, "heldout_fraction": 0.3,
                       "train": {**small, "learning_rate": 1e-3, "batch_size": 8, "max_steps": 6, "save_steps": 3}},
        }
    )
    store = Store(root / "store")
    store.write_table("items", ITEMS)
    return {"cfg": cfg, "store": store, "root": root}


@pytest.fixture(autouse=True)
def scripted_sampling(monkeypatch):
    monkeypatch.setattr("tasks.sampling.make_backend", lambda *a, **k: ScriptedJudge())
    # one thread per trainer child: on a shared 2-core machine more threads only contend (4-10x slower)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def prepared(env, stage, store=None):
    return prepare(get_stage(stage), env["cfg"], store or env["store"], {})


def run_stage(env, stage, store=None):
    """The stage through the runner, as the pipeline runs it (inputs from the store)."""
    store = store or env["store"]
    return execute(prepared(env, stage, store), env["cfg"], store)


def _weights(path, cls_name="AutoModelForCausalLM"):
    import transformers

    model = getattr(transformers, cls_name).from_pretrained(path, num_labels=1) if "Sequence" in cls_name else getattr(transformers, cls_name).from_pretrained(path)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(a, b):
    return any(not (a[k] == b[k]).all() for k in a if k in b)


def test_rft_sample_accepts_by_the_rules(env):
    out = run_stage(env, "rft_sample")
    rows = env["store"].read_rows(out.artifacts["rft_samples"])
    by = lambda iid: sorted((r for r in rows if r["item_id"] == iid), key=lambda r: r["sample_idx"])
    assert {r["item_id"] for r in rows} == {i["item_id"] for i in ITEMS} - {"graded"}
    for iid in ("easy0", "easy1"):  # every plain sample right: the item is too easy; its hinted sample stays
        plain, hinted = by(iid)[:3], by(iid)[3]
        assert all(r["correct"] and not r["accepted"] and r["reject_reason"] == rules.TOO_EASY for r in plain)
        assert hinted["hinted"] and hinted["correct"] and hinted["accepted"]
    for r in by("hard0"):  # plain samples wrong; the hint leads the hinted one to the labeled best
        assert r["accepted"] == r["hinted"] and r["correct"] == r["hinted"]
        assert r["reject_reason"] == (None if r["hinted"] else rules.INCORRECT)
    for iid in ("pos0", "pos1", "pos2", "pos3"):  # right exactly when the best response was shown first
        plain = by(iid)[:3]
        assert len({tuple(r["permutation"]) for r in by(iid)}) > 1
        for r in plain:
            assert r["correct"] == (r["permutation"][0] == ITEMS[[i["item_id"] for i in ITEMS].index(iid)]["best"])
            assert r["accepted"] == (r["correct"] and not all(p["correct"] for p in plain))
    assert all(r["parse_status"] == "no_box" and r["reject_reason"] == rules.UNPARSEABLE for r in by("garble"))
    assert all(r["correct"] for r in by("single1")) and not any(r["correct"] for r in by("single0"))
    assert not any(r["hinted"] for r in by("single1"))  # no best response to hint at
    assert "| unit |" in out.summary_md and "| other |" in out.summary_md and "| 4 |" in out.summary_md
    assert out.metrics["acceptance_by_source"]["other"] == pytest.approx(25.0)  # 3 hinted of 12


def test_rft_sample_runs_on_the_configured_backend(env, monkeypatch, tmp_path):
    """The same stage with the real (hf) backend on the tiny model: every planned trajectory is written."""
    from grm import generation

    monkeypatch.setattr("tasks.sampling.make_backend", generation.make_backend)
    store = Store(tmp_path)
    store.write_table("items", ITEMS[:4] + ITEMS[-3:])
    rows = store.read_rows(run_stage(env, "rft_sample", store).artifacts["rft_samples"])
    assert len(rows) == 6 * 3 + 4  # graded item left out; one hinted sample per item with a best response
    assert all(r["completion"] and r["parse_status"] and r["accepted"] is not None for r in rows)
    assert all(r["reject_reason"] is None for r in rows if r["accepted"])


def test_rft_train_fine_tunes_on_accepted_samples(env, tiny_model_dir):
    out = run_stage(env, "rft_train")
    folder = out.artifacts["rft"].path
    assert _changed(_weights(str(tiny_model_dir)), _weights(folder))
    card = (Path(folder) / "README.md").read_text()
    assert "rm_examples" in card and "learning_rate" in card and "last_loss" in card
    assert out.metrics["first_loss"] > out.metrics["last_loss"]
    accepted = sum(r["accepted"] for r in env["store"].read_rows(env["store"].table("rft_samples")))
    assert out.metrics["rm_examples"] == accepted
    assert out.metrics["general_examples"] == 2 and out.metrics["general_rows_left_out"] == 1  # 2 of 3 rows usable

    # the loss covers the GRM output only: the trainer's labels keep exactly the completion tokens
    from grm.training import sft
    from grm.training.jobs import read_job

    job_dir = prepared(env, "rft_train").work_dir(env["store"])
    trainer, _ = sft.build_trainer({**read_job(job_dir), "job_dir": str(job_dir)})
    tok = trainer.processing_class
    seen = 0
    for ex in trainer.train_dataset:
        target = tok.decode([t for t, y in zip(ex["input_ids"], ex["labels"]) if y != -100])
        context = tok.decode([t for t, y in zip(ex["input_ids"], ex["labels"]) if y == -100])
        if "boxed" in target:
            assert target.startswith("Scores: \\boxed{") and "Judge" not in target and "Judge" in context
            assert "The best response is" not in context  # hinted trajectories are trained without their hint
            seen += 1
    assert seen == accepted


def test_rl_drops_too_easy_items_resumes_after_a_kill_and_logs_the_core_reward(env, monkeypatch):
    job_dir = prepared(env, "rl").work_dir(env["store"])
    errors = []
    worker = threading.Thread(target=lambda: _capture(errors, run_stage, env, "rl"))
    worker.start()
    deadline = time.time() + 240
    while time.time() < deadline and not (job_paths(job_dir)["checkpoints"] / "checkpoint-2" / "trainer_state.json").is_file():
        time.sleep(0.02)
    pid = launch.running_child_pid(job_dir)
    assert pid is not None, "the rl trainer did not reach its first checkpoint"
    os.kill(pid, signal.SIGKILL)
    worker.join(120)
    assert errors and isinstance(errors[0], launch.TrainingError) and "SIGKILL" in str(errors[0])
    assert env["store"].table("rl_log") is None  # nothing half-published

    def no_sampling(*a, **k):
        raise AssertionError("the rerun sampled the too-easy filter again")

    monkeypatch.setattr("tasks.sampling.make_backend", no_sampling)
    out = run_stage(env, "rl")  # same cache key: same job folder, resumes
    m = out.metrics
    assert 2 <= m["resumed_from_step"] < RL_STEPS and m["steps"] == RL_STEPS
    log = env["store"].read_rows(out.artifacts["rl_log"])
    assert [r["step"] for r in log] == list(range(1, RL_STEPS + 1))  # the step counter continued past the checkpoint
    assert all(r["kl"] is not None and r["loss"] is not None and r["learning_rate"] is not None for r in log)

    import pyarrow.parquet as pq

    rl_items = set(pq.read_table(job_paths(job_dir)["data"]).column("item_id").to_pylist())
    assert m["too_easy"] >= 3 and not rl_items & {"easy0", "easy1", "easy2", "single1"}
    assert {"hard0", "pos0", "garble", "single0"} <= rl_items

    completions = read_completions(job_dir)
    assert all(sum(c["step"] == s for c in completions) == 8 for s in range(1, RL_STEPS + 1))
    assert len(completions) == 8 * RL_STEPS  # 8 completions (2 prompts x G=4) per step, none twice
    for step in log:
        rows = [c for c in completions if c["step"] == step["step"]]
        recomputed = []
        for c in rows:
            _, scores = parse_scores(c["completion"], c["n_responses"], BINARY if c["binary"] else GRADED)
            truth = {"best": c["best_shown"]} if c["best_shown"] is not None else {"label": c["label"]}
            recomputed.append(rules.rl_reward(scores, **truth))
        assert recomputed == [c["reward"] for c in rows]
        assert step["reward_mean"] == pytest.approx(sum(recomputed) / len(recomputed), abs=1e-6)
    assert _changed(_weights(env["store"].newest("models", "rft").path), _weights(out.artifacts["grm"].path))


def _capture(errors, fn, *args):
    try:
        fn(*args)
    except BaseException as e:  # noqa: BLE001 - handed to the test thread
        errors.append(e)


def test_metarm_data_and_train_bce_on_stored_labels(env):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from grm.training.metarm import encode
    data = run_stage(env, "metarm_data")
    rows = env["store"].read_rows(data.artifacts["metarm_data"])
    assert {r["origin"] for r in rows} == {"rft", "grm"} and {r["label"] for r in rows} == {0, 1}
    assert not any(r["item_id"] == "graded" for r in rows)
    sides = {}
    for r in rows:
        sides.setdefault(r["item_id"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values()) and {"train", "heldout"} <= set().union(*sides.values())

    out = run_stage(env, "metarm_train")
    folder = out.artifacts["metarm"].path
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    held = [r for r in rows if r["split"] == "heldout"]
    enc, cut = encode(tok, [r["text"] for r in held], env["cfg"].metarm.max_length)
    enc = tok.pad(enc, return_tensors="pt")
    shown = tok.decode(encode(tok, [held[0]["text"]], env["cfg"].metarm.max_length)[0]["input_ids"][0])
    assert "\x1e" not in shown and "\x1f" not in shown and shown.count("<|im_start|>assistant") == 1  # the GRM output is the response
    assert out.metrics["heldout_inputs_cut"] == sum(cut) and "inputs cut in the middle" in out.summary_md
    with torch.no_grad():
        logits = model(**enc).logits.squeeze(-1)
    labels = torch.tensor([float(r["label"]) for r in held])
    p = torch.sigmoid(logits)
    bce = -(labels * torch.log(p) + (1 - labels) * torch.log(1 - p))
    m = out.metrics
    assert m["heldout_n"] == len(held)
    assert float(bce.mean()) == pytest.approx(m["heldout_loss"], rel=1e-4, abs=1e-5)
    assert m["heldout_accuracy"] == pytest.approx(100.0 * float(((logits > 0).float() == labels).float().mean()))
    base = _weights(str(env["cfg"].models.base), "AutoModelForSequenceClassification")
    trained = {k: v for k, v in model.state_dict().items()}
    assert any(not (base[k] == trained[k]).all() for k in base if k in trained and not k.startswith("score"))
    # Same data, same seed, same meta RM: the new score head is drawn from the seed too.
    again = AutoModelForSequenceClassification.from_pretrained(run_stage(env, "metarm_train").artifacts["metarm"].path)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in trained.items())


def _vllm_python() -> str | None:
    for p in (os.environ.get("GRM_VLLM_PYTHON"), str(Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python")):
        if p and Path(p).is_file():
            return p
    return None


@pytest.mark.vllm
@pytest.mark.skipif(_vllm_python() is None, reason="no vllm environment (.venv-vllm, or GRM_VLLM_PYTHON)")
def test_trained_models_load_in_vllm(env):
    """models/rft and models/grm generate through the pipeline's vllm backend; models/metarm loads as a vLLM
    classifier and gives the same probability as transformers (sigmoid of the one logit)."""
    import json
    import subprocess

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from grm.config import GenerationConfig, VLLMConfig
    from grm.generation import Request, SamplingParams, make_backend
    from grm.prompts import as_chat

    store = env["store"]
    folders = {n: store.newest("models", n).path for n in ("rft", "grm", "metarm")}
    gen = GenerationConfig(backend="vllm", vllm=VLLMConfig(python=_vllm_python(), dtype="float32",
                                                           extra_args={"enforce_eager": True}))
    for name in ("rft", "grm"):
        with make_backend(folders[name], gen, max_model_len=256) as backend:
            [res] = backend.generate([Request("p", as_chat("Judge"), 2, 0)], SamplingParams(temperature=0.5, max_new_tokens=4))
        assert len(res.samples) == 2 and all(isinstance(x.text, str) for x in res.samples), name
    cmd = [_vllm_python(), str(Path(__file__).with_name("vllm_load_check.py")), "classify", folders["metarm"]]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    got = json.loads(line[0][len("RESULT"):])
    tok = AutoTokenizer.from_pretrained(folders["metarm"])
    model = AutoModelForSequenceClassification.from_pretrained(folders["metarm"])
    with torch.no_grad():
        logit = model(**tok("Judge this", return_tensors="pt")).logits[0, 0]
    assert got[folders["metarm"]]["probs"][0] == pytest.approx(float(torch.sigmoid(logit)), abs=1e-3)
