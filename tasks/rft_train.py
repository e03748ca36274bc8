"""rft_train: rejective fine-tuning (TRL SFT) of the base model on accepted trajectories -> ``models/rft``.

Each example is the GRM prompt the trajectory saw (a hinted one: the same prompt without the hint line)
and the trajectory as the answer; the loss falls on the answer only.

Optionally mixes a general instruction dataset (rft.general_data, JSONL/Parquet with ``messages``) so that it
makes up rft.general_ratio of the examples (the paper: about 85%).
"""

from __future__ import annotations

from grm.training.examples import load_general_chat, mix_general, sft_example, unhinted_prompt
from grm.training.launch import clear_checkpoints

from grm.prompts import Templates
from storage import ArtifactRef
from tasks.base import StageContext, StageOutput
from tasks.models import publish_model, run_trainer
from tasks.stage import MODEL, stage


@stage(group="train", outputs={"rft": MODEL}, config=("seed", "models", "prompts", "rft.train", "rft.general_ratio"),
       models={"base": "models.base"}, files={"general_data": "rft.general_data"})
def run(ctx: StageContext, rft_samples: ArtifactRef, items: ArtifactRef, base: ArtifactRef,
        general_data: ArtifactRef | None = None) -> StageOutput:
    cfg = ctx.config
    ref = rft_samples
    table = ctx.store.read_table(ref, columns=["item_id", "permutation", "prompt", "completion", "accepted", "hinted"])
    accepted = [r for r in table.to_pylist() if r["accepted"]]
    if not accepted:
        raise ValueError(f"rft_train: no accepted trajectory in {ref.short}; nothing to fine-tune on")
    hinted_items = {r["item_id"] for r in accepted if r["hinted"]}
    items_ref, items = items, {}
    if hinted_items:
        items = {i["item_id"]: i for i in ctx.store.read_rows(items_ref) if i["item_id"] in hinted_items}
    orphans = [r for r in accepted if r["hinted"] and r["item_id"] not in items]
    if orphans:  # the items table changed since sampling: the prompt without the hint cannot be rebuilt
        ctx.logger.warning("rft_train: %d hinted trajectories left out: their items are not in %s", len(orphans), items_ref.short)
        accepted = [r for r in accepted if not (r["hinted"] and r["item_id"] not in items)]
    tmpl = Templates.configured(cfg)
    rm = [
        sft_example(unhinted_prompt(items[r["item_id"]], r["permutation"], tmpl) if r["hinted"] else r["prompt"], r["completion"])
        for r in accepted
    ]
    general, problems = [], []
    if general_data is not None and cfg.rft.general_ratio > 0:
        data = load_general_chat(general_data.path)
        general, problems = data.examples, data.problems
        for p in problems[:20]:
            ctx.logger.warning("rft_train: general data row left out: %s", p)
    examples, counts = mix_general(rm, general, cfg.rft.general_ratio, cfg.seed)
    counts.update(
        hinted_examples=sum(r["hinted"] for r in accepted), hinted_left_out=len(orphans), general_rows_left_out=len(problems)
    )
    result = run_trainer(
        ctx, "sft", base, cfg.rft.train, {"max_length": cfg.models.max_length}, examples,
        description="Rejective fine-tuning on accepted GRM trajectories (loss on the GRM output only).",
        card_data={**counts, "rft_samples": ref.short},
    )
    model = publish_model(ctx, "rft", result["model_dir"], metrics=result["metrics"], data=counts)
    clear_checkpoints(ctx.work_dir())
    m = result["metrics"]
    md = (
        f"# rft_train\n\n{counts['rm_examples']} RM examples + {counts['general_examples']} general examples "
        f"(general share {100 * counts['general_share']:.1f}%), {m['steps']} steps, loss {m['first_loss']:.4f} -> "
        f"{m['last_loss']:.4f}" + (f", resumed from step {m['resumed_from_step']}" if m["resumed_from_step"] else "") + "\n"
    )
    return StageOutput({"rft": model}, rows_in=len(examples), rows_out=m["steps"], summary_md=md, metrics={**m, **counts})
