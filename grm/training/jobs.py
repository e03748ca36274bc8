"""What the trainer child programs share: the job spec, device settings, checkpoints, results, model cards.

A job is a folder holding ``job.json`` (written by ``launch``), the training data, the trainer's
``checkpoints/``, the final model in ``model/`` and ``result.json``. The child reads the spec, trains
(resuming from the last complete checkpoint if there is one) and writes the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

from grm import failpoints, parent_watch

JOB_FILE = "job.json"
DATA_FILE = "data.parquet"
RESULT_FILE = "result.json"
CHECKPOINTS = "checkpoints"
MODEL = "model"
CHECKPOINT_PREFIX = "checkpoint-"


def job_paths(job_dir: str | Path) -> dict[str, Path]:
    d = Path(job_dir)
    return {
        "job": d / JOB_FILE,
        "data": d / DATA_FILE,
        "result": d / RESULT_FILE,
        "checkpoints": d / CHECKPOINTS,
        "model": d / MODEL,
    }


def read_job(job_dir: str | Path) -> dict:
    return json.loads(job_paths(job_dir)["job"].read_text())


def read_data(job_dir: str | Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(job_paths(job_dir)["data"]).to_pylist()


# ---- checkpoints -----------------------------------------------------------------------------------------
def _complete(ckpt: Path) -> bool:
    # trainer_state.json is written after the weights and optimizer state: its presence marks a whole checkpoint
    return (ckpt / "trainer_state.json").is_file()


def last_checkpoint(checkpoints_dir: str | Path) -> Path | None:
    """The newest complete ``checkpoint-N``; a checkpoint left half-written by a killed run is removed."""
    d = Path(checkpoints_dir)
    if not d.is_dir():
        return None
    found = sorted(
        (p for p in d.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and p.name[len(CHECKPOINT_PREFIX):].isdigit()),
        key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]),
    )
    for ckpt in reversed(found):
        if _complete(ckpt):
            return ckpt
        shutil.rmtree(ckpt, ignore_errors=True)
    return None


def checkpoint_step(ckpt: Path | None) -> int:
    return int(ckpt.name[len(CHECKPOINT_PREFIX):]) if ckpt is not None else 0


def resume_training(trainer: Any, ckpt: Path | None, name: str) -> Any:
    """``trainer.train`` from the last complete checkpoint, or from the start. A kill campaign may stop it
    half-way through writing a checkpoint (grm/failpoints.py)."""
    failpoints.before(trainer, "_save_optimizer_and_scheduler", "train.checkpoint", name)
    if ckpt is not None and 0 < trainer.args.max_steps <= checkpoint_step(ckpt):
        return _finished(trainer, ckpt)
    return trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)


def _finished(trainer: Any, ckpt: Path) -> Any:
    """A run killed after its last checkpoint (while saving or publishing the model) is over: take that checkpoint.
    transformers resumed from it would train one step more (it checks for the end after a step): with a decayed
    learning rate the weights stay (its rate is 0 there), with a constant one they move, and GRPO samples again
    (found by bench/kill_campaign.py: a meta RM reporting 3 steps of 2)."""
    from transformers import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer._load_from_checkpoint(str(ckpt))
    trainer.state = TrainerState.load_from_json(str(ckpt / "trainer_state.json"))
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return TrainOutput(trainer.state.global_step, sum(losses) / len(losses) if losses else float("nan"), {})


# ---- devices ---------------------------------------------------------------------------------------------
def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def device_settings(train: dict) -> tuple[dict, list[str]]:
    """TrainingArguments that depend on the hardware, and notes on what was overridden.

    CPU: no bf16 (TRL's default of bf16 raises there), ``use_cpu``, no activation checkpointing (it only
    trades compute for memory, which CPU runs do not need). GPU: bf16 when the device supports it unless the
    config says otherwise."""
    import torch

    notes = []
    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported() if train.get("bf16") is None else bool(train["bf16"])
        return {"bf16": bf16, "fp16": False}, notes
    if train.get("bf16"):
        notes.append("bf16 requested but no GPU: training in float32 on CPU")
    return {"bf16": False, "fp16": False, "use_cpu": True, "activation_checkpointing": False}, notes


def torch_dtype(dtype: str, bf16: bool):
    """Weights dtype: float32 on CPU, bfloat16 under bf16 training when 'auto'."""
    import torch

    if not torch.cuda.is_available():
        return torch.float32
    if dtype == "auto":
        return torch.bfloat16 if bf16 else torch.float32
    return getattr(torch, dtype)


def common_arguments(job: dict) -> tuple[dict, list[str]]:
    """TrainingArguments shared by the three trainers, from the stage's TrainerConfig."""
    t = job["train"]
    per_step = t["per_device_batch_size"] * world_size()
    if t["batch_size"] % per_step:
        raise ValueError(
            f"batch_size {t['batch_size']} is not a multiple of per_device_batch_size x processes = "
            f"{t['per_device_batch_size']} x {world_size()}"
        )
    device, notes = device_settings(t)
    args = {
        "output_dir": str(job_paths(job["job_dir"])["checkpoints"]),
        "learning_rate": t["learning_rate"],
        "per_device_train_batch_size": t["per_device_batch_size"],
        "gradient_accumulation_steps": t["batch_size"] // per_step,
        "max_steps": t["max_steps"],
        "warmup_steps": t.get("warmup_ratio", 0.0),  # a float below 1 is a ratio of the total steps
        "weight_decay": t.get("weight_decay", 0.0),
        "save_strategy": "steps",
        "save_steps": t["save_steps"],
        "save_total_limit": 2,
        "logging_steps": 1,
        "seed": job["seed"],
        "data_seed": job["seed"],
        "report_to": "none",
        "disable_tqdm": True,
        **device,
    }
    return args, notes


# ---- outputs ---------------------------------------------------------------------------------------------
# Metrics that depend on the run's history, not on the model: HF's train_loss averages only the steps of the
# last session (a resumed run reports a different figure for the same weights). They stay in result.json and
# the artifact's manifest; the card, part of the model's content, leaves them out.
RUN_METRICS = ("train_loss", "resumed_from_step")


def write_model_card(folder: Path, title: str, job: dict, metrics: dict) -> None:
    """README.md of a trained model: what it was trained on, with which settings, and how it did."""
    card = job.get("card", {})
    lines = [
        f"# {title}",
        "",
        card.get("description", ""),
        "",
        f"- trainer: `{job['trainer']}` (started from `{card.get('start', job['model'])}`)",
        f"- produced by: grm-spct, stage `{card.get('stage', job['trainer'])}`",
        "",
        "## Data",
        "",
        *[f"- {k}: {v}" for k, v in card.get("data", {}).items()],
        "",
        "## Training configuration",
        "",
        "```json",
        json.dumps({"train": job["train"], "params": job.get("params", {}), "seed": job["seed"]}, indent=2, sort_keys=True),
        "```",
        "",
        "## Metrics",
        "",
        *[f"- {k}: {v}" for k, v in sorted(metrics.items()) if isinstance(v, (int, float, str)) and k not in RUN_METRICS],
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def child_main(train: Callable[[dict], dict]) -> None:
    """Entry point of a trainer child: ``python -m grm.training.<x> JOB_DIR``. Writes result.json on success;
    on failure the exception goes to stderr (the launcher shows its tail) and the exit code is non-zero."""
    if len(sys.argv) != 2:
        sys.exit(f"usage: python -m {sys.modules['__main__'].__spec__.name} JOB_DIR")
    parent_watch.watch_from_env()  # a launcher killed outright does not leave this trainer running
    job = read_job(sys.argv[1])
    job["job_dir"] = sys.argv[1]
    started = time.time()
    result: dict[str, Any] = train(job)
    result["seconds"] = time.time() - started
    if is_main_process():
        path = job_paths(sys.argv[1])["result"]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str))
        os.replace(tmp, path)
