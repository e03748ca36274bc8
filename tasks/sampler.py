"""Sampling GRM judgments of items for the training stages (rft_sample, rl's too-easy filter, metarm_data).

Plans the samples with grm.judging (per-sample shuffled orders, optional hinted sample), samples them in
resumable shards on the configured backend and task runner (tasks/sampling.py), and returns grm.judging's
scored rows.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from grm import judging
from grm.config import Config
from grm.generation import SamplingParams
from grm.prompts import Templates

from storage.store import read_parquet_rows
from tasks.base import StageContext
from tasks.sampling import BackendSpec, planned_rows, sample_shards


def templates(cfg: Config) -> Templates:
    """The configured templates (files resolved like every config path; 'default' keeps the built-in)."""
    p = cfg.prompts
    files = {f: getattr(p, f) for f in ("grm", "single", "hint", "metarm", "pairwise_judge", "response")}
    return Templates.load({k: v if v == "default" else cfg.resolve_path(v) for k, v in files.items()})


def sample_judgments(
    ctx: StageContext,
    model: str,
    items: Sequence[Mapping],
    *,
    k: int,
    temperature: float,
    tag: str,
    hinted: bool = False,
) -> list[dict]:
    """k shuffled non-hinted samples per item (plus one hinted sample when asked), scored by Eq. 10."""
    cfg = ctx.config
    requests, planned = judging.plan(
        items, k=k, seed=cfg.seed, templates=templates(cfg), tag=tag, hinted=hinted, single_mode="binary"
    )
    if not requests:
        return []
    params = SamplingParams(temperature=temperature, max_new_tokens=cfg.generation.max_new_tokens, top_p=cfg.generation.top_p)
    ctx.logger.info("%s: sampling %d requests (%d samples) with %s", ctx.stage, len(requests), len(planned), model)
    spec = BackendSpec(model, cfg.generation, dtype=cfg.models.dtype, max_model_len=cfg.models.max_length)
    by_id = {i["item_id"]: i for i in items}
    # shards hold rft_samples' columns (a superset of grm.judging's rows); the stage decides acceptance after
    run = sample_shards(ctx, tag, "rft_samples", requests, planned_rows(planned, by_id), spec, params)
    keep = ("item_id", "sample_idx", "hinted", "seed", "permutation", "prompt", "completion", "scores", "parse_status",
            "principles", "critique", "correct")
    return [{k: row[k] for k in keep} for f in run.files for row in read_parquet_rows(f)]
