"""rft_sample: sample trajectories for rejective fine-tuning and decide which are accepted.

The sampler is rft.sampler: the base model, a store model, a folder or hub id, or a teacher behind an
OpenAI-compatible endpoint (the paper sampled with DeepSeek-V2.5, a strong chat model).

For every train item whose correctness is defined (grm.training.examples.trainable): rft.n_samples
non-hinted samples with shuffled response order, plus one hinted sample when rft.hinted; the core's rules
(grm.rules.rft_acceptance) accept or reject each, and every trajectory is written to ``rft_samples``.
"""

from __future__ import annotations

from collections import defaultdict

from grm import rules
from grm.parsing import OK
from grm.training.examples import trainable

from storage import ArtifactRef
from tasks.base import StageContext, StageOutput
from tasks.sampling import sample_judgments
from tasks.stage import MODEL_SECTIONS, TABLE, stage


def accept(rows: list[dict]) -> None:
    """Set accepted / reject_reason on every row, item by item (rows of one item in sample order)."""
    by_item: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_item[r["item_id"]].append(r)
    for group in by_item.values():
        group.sort(key=lambda r: r["sample_idx"])
        decisions = rules.rft_acceptance(
            [rules.Trajectory(hinted=r["hinted"], parsed=r["parse_status"] == OK, correct=bool(r["correct"])) for r in group]
        )
        for r, d in zip(group, decisions):
            r["accepted"], r["reject_reason"] = d.accepted, d.reject_reason


def _rates(rows: list[dict], key) -> list[tuple]:
    groups: dict = defaultdict(lambda: [0, 0, 0])  # trajectories, accepted, correct
    for r in rows:
        g = groups[key(r)]
        g[0] += 1
        g[1] += r["accepted"]
        g[2] += bool(r["correct"])
    return [(k, n, a, 100.0 * a / n, 100.0 * c / n) for k, (n, a, c) in sorted(groups.items(), key=lambda kv: str(kv[0]))]


def summary(rows: list[dict], n_items: int, untrainable: int) -> tuple[str, dict]:
    reasons: dict[str, int] = defaultdict(int)
    for r in rows:
        reasons[r["reject_reason"] or "accepted"] += 1
    lines = [
        "# rft_sample",
        "",
        f"{n_items} train items sampled, {len(rows)} trajectories, {sum(r['accepted'] for r in rows)} accepted; "
        f"{untrainable} train items left out (no 0/1 or best label to check against).",
        "",
        "Outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())),
    ]
    for title, key in (
        ("source", lambda r: r["source"]),
        ("number of responses", lambda r: r["n_responses"]),
        ("hinted", lambda r: "hinted" if r["hinted"] else "plain"),
    ):
        lines += ["", f"| {title} | trajectories | accepted | acceptance % | correct % |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {n} | {a} | {rate:.1f} | {corr:.1f} |" for k, n, a, rate, corr in _rates(rows, key)]
    metrics = {
        "trajectories": len(rows),
        "accepted": sum(r["accepted"] for r in rows),
        "acceptance_by_source": {str(k): rate for k, _, _, rate, _ in _rates(rows, lambda r: r["source"])},
        "acceptance_by_n": {str(k): rate for k, _, _, rate, _ in _rates(rows, lambda r: r["n_responses"])},
        "reject_reasons": dict(reasons),
    }
    return "\n".join(lines) + "\n", metrics


@stage(group="train", outputs={"rft_samples": TABLE},
       config=MODEL_SECTIONS + ("rft.sampler", "rft.n_samples", "rft.hinted", "rft.temperature"),
       models={"sampler": "rft.sampler"})
def run(ctx: StageContext, items: ArtifactRef, sampler: ArtifactRef) -> StageOutput:
    cfg = ctx.config.rft
    train = [i for i in ctx.store.read_rows(items) if i["split"] == "train"]
    items = [i for i in train if trainable(i)]
    rows = sample_judgments(ctx, sampler, items, k=cfg.n_samples, temperature=cfg.temperature, tag="rft", hinted=cfg.hinted)
    by_id = {i["item_id"]: i for i in items}
    for r in rows:
        item = by_id[r["item_id"]]
        r["source"], r["n_responses"] = item["source"], len(item["responses"])
    accept(rows)
    ref = ctx.store.write_table("rft_samples", rows, **ctx.manifest())
    md, metrics = summary(rows, len(items), len(train) - len(items))
    return StageOutput({"rft_samples": ref}, rows_in=len(items), rows_out=len(rows), summary_md=md, metrics=metrics)
