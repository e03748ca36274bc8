"""Stage `bootstrap` (only when models.base is 'scratch'): a small LM pre-trained on the miniature world.

It stands in for "a pretrained LLM": a tokenizer and a small causal LM (Mistral architecture) trained from
scratch on the world's text, including judgments by a deliberately imperfect programmatic teacher (grm/miniworld/README.md).
Every later stage treats the result exactly like a real base model.
"""

from __future__ import annotations

from dataclasses import asdict

from grm.prompts import Templates
from tasks.base import StageContext, StageOutput
from tasks.models import publish_model
from tasks.stage import MODEL, stage


def from_scratch(cfg) -> bool:
    """when models.base is 'scratch'"""
    return cfg.models.base == "scratch"


@stage(group="train", outputs={"base": MODEL}, config=("seed", "models", "prompts", "data.miniworld", "bootstrap"),
       enabled=from_scratch)
def run(ctx: StageContext) -> StageOutput:
    from grm.miniworld.bootstrap import bootstrap  # torch: imported when the stage runs

    cfg = ctx.config
    if cfg.data.miniworld is None:
        raise ValueError("models.base is 'scratch', which pre-trains on the miniature world, but data.miniworld is not set")
    out = ctx.work_dir() / "model"
    stats = bootstrap(out, cfg.data.miniworld, cfg.bootstrap, Templates.configured(cfg), max_length=cfg.models.max_length,
                      seed=cfg.seed, log=ctx.logger.info)
    ref = publish_model(ctx, "base", out, bootstrap=asdict(stats))
    summary = (
        f"**bootstrap**: {stats.parameters:,}-parameter model, vocab {stats.vocab_size}, pre-trained on "
        f"{stats.examples} judgments ({stats.steps} steps, {stats.train_seconds:.0f} s, "
        f"{stats.tokens_per_second:,.0f} tokens/s, final loss {stats.final_loss:.3f}); teacher accuracy "
        f"{100 * stats.teacher_accuracy:.1f}%, modes {stats.teacher_modes}"
    )
    return StageOutput({"base": ref}, rows_in=stats.examples, rows_out=1, summary_md=summary)
