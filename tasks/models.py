"""Running a trainer as a child job, and publishing the model it makes as a store artifact (``models/<name>``)."""

from __future__ import annotations

import os
from pathlib import Path

from grm.config import TrainerConfig
from grm.model_loading import ModelTrust
from grm.training.launch import run_job
from storage import ArtifactRef

from tasks.base import StageContext


# Written by transformers' Trainer beside the weights: a pickle of the training arguments, holding the job's
# absolute paths. Nothing loads it, and a published model's files are its content only (so a rerun that
# trains the same weights publishes the same content hash, and what is downstream stays Cached).
NOT_PUBLISHED = ("training_args.bin",)


def publish_model(ctx: StageContext, name: str, folder: str | Path, **extra) -> ArtifactRef:
    """Move a finished model folder into the store as ``models/<name>`` (atomic publish). What the run measured
    (times, the step it resumed from) goes in ``extra``, to the manifest, not into the folder."""
    staging = ctx.store.staging_folder()
    for entry in Path(folder).iterdir():
        if entry.name not in NOT_PUBLISHED:
            os.replace(entry, staging / entry.name)
    return ctx.store.publish_folder("models", name, staging, **ctx.manifest(**extra))


def model_label(model: ArtifactRef | str) -> str:
    """How a model card names a model: a store model by name and content, not by where the store is; any other
    by its folder or hub id."""
    if not isinstance(model, ArtifactRef):
        return model
    return f"{model.name} (content {model.content_hash[:12]})" if model.kind == "models" else model.path


def run_trainer(ctx: StageContext, trainer: str, model: ArtifactRef | str, train_cfg: TrainerConfig, params: dict,
                data, *, description: str, card_data: dict, python: str | None = None) -> dict:
    """Run one trainer (sft | grpo | metarm) as a child job in the stage's work folder: the job spec every
    trainer reads (model, trainer settings, seed, dtype, its own params, model-card text)."""
    cfg = ctx.config
    spec = {
        "model": model.path if isinstance(model, ArtifactRef) else model,
        "train": train_cfg.model_dump(mode="json"),
        "seed": cfg.seed,
        "dtype": cfg.models.dtype,
        "trust": ModelTrust.of(cfg.models).as_dict(),  # what the child may load (grm.model_loading)
        "params": params,
        "card": {"stage": ctx.stage, "description": description, "data": card_data, "start": model_label(model)},
    }
    accelerate = cfg.resolve_path(train_cfg.accelerate_config) if train_cfg.accelerate_config else None
    python = cfg.resolve_path(python) if python else None
    return run_job(trainer, ctx.work_dir(), spec, data, accelerate_config=accelerate, python=python)
