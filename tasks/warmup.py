"""Stage `warmup` (only when warmup is set): the format warm-up before RFT (docs/design.md, "Cold start").

It reads the judge critiques of warmup.data (grm/warmup.py), drops those whose query overlaps an eval item's (the
same n-gram rule as curate), writes the SFT examples as the `warmup_examples` table, and fine-tunes warmup.model
on them with the RFT trainer: ``models/warm``, which the config names as models.base and rft.sampler.
"""

from __future__ import annotations

import random

from grm.curation import decontaminate
from grm.model_loading import ModelTrust
from grm.prompts import Templates, as_chat
from grm.seeds import derive_seed
from grm.training.examples import sft_example
from grm.training.launch import clear_checkpoints
from grm.training.tokenizers import load_tokenizer
from grm.warmup import read_critiques, warmup_examples
from storage import ArtifactRef
from tasks.base import StageContext, StageOutput
from tasks.models import publish_model, run_trainer
from tasks.stage import MODEL, TABLE, stage

SOURCE = "warmup"  # the critiques' source name in the decontamination report


def n_tokens(tok, row: dict) -> int:
    """The example's length as the trainer sees it: prompt and target in the model's chat template."""
    chat = [*as_chat(row["prompt"]), {"role": "assistant", "content": row["completion"]}]
    return len(tok.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"])


def configured(cfg) -> bool:
    """when warmup is set"""
    return cfg.warmup is not None


@stage(group="train", outputs={"warmup_examples": TABLE, "warm": MODEL},
       config=("seed", "models", "prompts", "data.decontamination", "warmup"),
       models={"start": "warmup.model"}, files={"critiques": "warmup.data"}, enabled=configured)
def run(ctx: StageContext, items: ArtifactRef, start: ArtifactRef, critiques: ArtifactRef) -> StageOutput:
    cfg, w = ctx.config, ctx.config.warmup
    read = read_critiques(critiques.path)
    for p in read.problems[:20]:
        ctx.logger.warning("warmup: row left out: %s", p)
    evals = [i for i in ctx.store.read_rows(items) if i["split"] == "eval"]
    as_items = [{"conversation": c.conversation, "split": "train", "source": SOURCE, "meta": None, "i": k}
                for k, c in enumerate(read.rows)]
    d = cfg.data.decontamination
    kept, dropped, _ = decontaminate(evals + as_items, ngram=d.ngram, threshold=d.threshold, action="drop")
    clean = [read.rows[r["i"]] for r in kept if r["source"] == SOURCE and "i" in r]
    rows = warmup_examples(clean, Templates.configured(cfg), critique_chars=w.critique_chars,
                           listwise_max=w.listwise_max, seed=cfg.seed)
    # an example longer than the context would be cut inside its target: left out, and counted
    tok = load_tokenizer(start.path, ModelTrust.of(cfg.models))
    fits = [r for r in rows if n_tokens(tok, r) <= cfg.models.max_length]
    too_long, rows = len(rows) - len(fits), fits
    if w.max_examples is not None and len(rows) > w.max_examples:
        # the pairwise and listwise examples first (the benchmarks are pairs; there are few), then singles
        random.Random(derive_seed(cfg.seed, "warmup-pick")).shuffle(rows)
        rows = sorted(rows, key=lambda r: r["kind"] == "single")[: w.max_examples]
    if not rows:
        raise ValueError(f"warmup: no example left from {critiques.path} ({len(read.problems)} rows unreadable, "
                         f"{len(dropped)} overlapping eval queries, {too_long} longer than models.max_length)")
    table = ctx.store.write_table("warmup_examples", rows, **ctx.manifest())
    kinds = {k: sum(r["kind"] == k for r in rows) for k in ("single", "pairwise", "listwise")}
    counts = {"critiques_read": len(read.rows) + len(read.problems), "rows_left_out": len(read.problems),
              "contaminated": len(dropped), "too_long": too_long, "examples": len(rows), **kinds}
    result = run_trainer(
        ctx, "sft", start, w.train, {"max_length": cfg.models.max_length},
        [sft_example(r["prompt"], r["completion"]) for r in rows],
        description="Format warm-up: SFT on a strong judge's critiques written as GRM outputs (analysis, then the "
                    "scores box), before rejective fine-tuning.",
        card_data={**counts, "warmup_examples": table.short},
    )
    model = publish_model(ctx, "warm", result["model_dir"], metrics=result["metrics"], data=counts)
    clear_checkpoints(ctx.work_dir())
    m = result["metrics"]
    md = (f"# warmup\n\n{counts['examples']} examples ({kinds['single']} single, {kinds['pairwise']} pairwise, "
          f"{kinds['listwise']} listwise) from {counts['critiques_read']} critiques ({len(read.problems)} rows left "
          f"out, {len(dropped)} overlapping eval queries, {too_long} over models.max_length); {m['steps']} steps, loss {m['first_loss']:.4f} -> "
          f"{m['last_loss']:.4f}\n")
    return StageOutput({"warmup_examples": table, "warm": model}, rows_in=counts["critiques_read"], rows_out=len(rows),
                       summary_md=md, metrics={**m, **counts})
