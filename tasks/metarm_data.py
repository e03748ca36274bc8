"""metarm_data: labeled trajectories for the meta RM -> ``metarm_data``.

Non-hinted RFT samples plus metarm.fresh_samples new samples per train item from ``models/grm`` (to close the
gap between the RFT sampler and the policy the meta RM will guide); label 1 when the trajectory's scores are
correct by Eq. 10; correct and incorrect trajectories are both kept. Items are split into train and
held-out (metarm.heldout_fraction) by prompt, so that all trajectories of a prompt fall on one side.
"""

from __future__ import annotations

from collections import Counter

from grm.sampling_plan import SKIPPED
from grm.training.examples import heldout, metarm_text, trainable

from grm.prompts import Templates
from storage import ArtifactRef
from tasks.base import StageContext, StageOutput
from tasks.sampling import sample_judgments
from tasks.stage import MODEL_SECTIONS, TABLE, stage


def labeled(rows, by_id, origin: str, tmpl, fraction: float, seed: int) -> list[dict]:
    out = []
    for r in rows:
        item = by_id.get(r["item_id"])
        if item is None or r["hinted"] or r["parse_status"] == SKIPPED or r["correct"] is None:
            continue
        out.append(
            {
                "item_id": r["item_id"],
                "sample_idx": r["sample_idx"],
                "text": metarm_text(item, r["permutation"], r["completion"], tmpl),
                "label": int(bool(r["correct"])),
                "origin": origin,
                "split": "heldout" if heldout(item, fraction, seed) else "train",
            }
        )
    return out


@stage(group="metarm", outputs={"metarm_data": TABLE},
       config=MODEL_SECTIONS + ("metarm.fresh_samples", "metarm.temperature", "metarm.heldout_fraction"))
def run(ctx: StageContext, items: ArtifactRef, rft_samples: ArtifactRef, grm: ArtifactRef) -> StageOutput:
    cfg = ctx.config
    items = [i for i in ctx.store.read_rows(items) if i["split"] == "train" and trainable(i)]
    by_id = {i["item_id"]: i for i in items}
    tmpl = Templates.configured(cfg)
    frac = cfg.metarm.heldout_fraction
    rft_rows = ctx.store.read_table(rft_samples, columns=["item_id", "sample_idx", "hinted", "permutation", "completion", "parse_status", "correct"]).to_pylist()
    rows = labeled(rft_rows, by_id, "rft", tmpl, frac, cfg.seed)
    if cfg.metarm.fresh_samples > 0:
        fresh = sample_judgments(
            ctx, grm, items, k=cfg.metarm.fresh_samples, temperature=cfg.metarm.temperature, tag="metarm"
        )
        rows += labeled(fresh, by_id, "grm", tmpl, frac, cfg.seed)
    counts = Counter((r["origin"], r["split"], r["label"]) for r in rows)
    ref = ctx.store.write_table("metarm_data", rows, **ctx.manifest())
    md = ["# metarm_data", "", "| origin | split | label | trajectories |", "|---|---|---|---|"]
    md += [f"| {o} | {s} | {y} | {n} |" for (o, s, y), n in sorted(counts.items())]
    labels = Counter(r["label"] for r in rows)
    if len(labels) < 2:
        md += ["", f"WARNING: only one class present ({dict(labels)}); the meta RM cannot learn to separate them."]
    return StageOutput(
        {"metarm_data": ref},
        rows_in=len(rft_rows),
        rows_out=len(rows),
        summary_md="\n".join(md) + "\n",
        metrics={"positives": labels.get(1, 0), "negatives": labels.get(0, 0)},
    )
