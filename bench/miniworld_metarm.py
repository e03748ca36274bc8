"""What the miniature world's meta RM can learn, and what a perfect checker of the working would give.

Reads a store after a full `grm run` (its newest `metarm_data`, `items` and models). By default it re-splits
the meta-RM trajectories by prompt (--heldout share, as the pipeline splits them) and reports, on the held-out
*train* prompts, the ROC-AUC, the within-item AUC (a right trajectory ranked above a wrong one of the same
item) and voting@k against meta-RM-guided voting (k_meta = k/2) over each item's fresh GRM samples.
`--on-eval` reports the same for the judge stage's eval samples, ranked by the pipeline's meta RM and by the
checker (analysis only: nothing is fitted there).

Scorers: `--base NAME` trains a meta RM from that store model (base | rft | grm) with the pipeline's own
trainer (grm.training.metarm, as metarm_train runs it) and scores with its scorer (grm.reward.HFMetaScorer);
`--checker` instead scores by a program that checks the judgment's *working* the way a perfect process
verifier would (careful mode, right working, responses copied right, verdicts consistent with the working):
the ceiling of a meta RM that verifies steps rather than re-solving the task. The checker reads the number
families (add, max, count: tiny.yaml's); tests/test_miniworld.py checks it against teacher judgments.

python -m bench.miniworld_metarm --store /tmp/final3 --base base --steps 250
python -m bench.miniworld_metarm --store /tmp/final3 --checker
python -m bench.miniworld_metarm --store /tmp/final3 --on-eval
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import re
import tempfile
import time

from grm.metrics import roc_auc
from grm.miniworld.families import TASKS
from grm.miniworld.teacher import is_shortcut, verdicts
from grm.parsing import BINARY, GRADED, parse_scores
from grm.prompts import JUDGMENT_MARK, RESPONSE_MARK
from grm.rules import is_correct, item_truth
from grm.shuffling import to_original
from grm.training.examples import heldout
from grm.voting import binary_label, default_k_meta, metarm_select, method_tag, tie_key, vote
from storage.store import NoArtifact, Store

SHOWN = re.compile(r"^Response (\d+): (.*)$", re.M)  # configs/templates/miniworld_response.txt
CHECKED = ("add", "max", "count")  # the families whose working the checker reads (tiny.yaml's)


def trajectory(row: dict, item: dict) -> dict:
    """The row's shown order (recovered from the prompt: a miniature item's responses are distinct), its
    scores in the original order and its correctness, plus the checker's flags."""
    prompt, _, judgment = row["text"].partition(JUDGMENT_MARK)
    prompt = prompt.replace(RESPONSE_MARK, "")
    resp = list(item["responses"])
    shown = [v for _, v in SHOWN.findall(prompt)] if len(resp) > 1 else resp
    if sorted(shown) != sorted(resp):
        raise ValueError("its prompt does not show the item's responses in miniworld_response.txt's form")
    perm = [resp.index(v) for v in shown]
    n = len(resp)
    _, sc = parse_scores(judgment, n, BINARY if n == 1 else GRADED)
    orig = to_original(sc, perm) if sc else None
    meta = json.loads(item["meta"] or "{}")
    if meta.get("task") not in CHECKED:
        raise ValueError(f"not a miniature-world item of {'/'.join(CHECKED)}")
    task = TASKS[meta["task"]]
    answer = meta["answer"]
    careful = not is_shortcut(judgment)
    analysis = judgment.split("Analysis:", 1)[-1]
    m = re.match(r"\s*(.*?)\.(?:\s|$)", analysis)
    working = m.group(1) if m else ""
    claimed = re.sub(r" times$", "", working).rsplit(" ", 1)[-1] if working else None
    said = verdicts(judgment)
    flags = {
        "working": careful and task.working(meta["args"], answer) == working,
        "copies": careful and all(i <= n and shown[i - 1] == v for i, v, _, _ in said),
        "verdicts": careful and all((v == claimed) == match for _, v, _, match in said),
    }
    truth = item_truth(item["label_kind"], item["best"], item["ratings"])
    return {**row, "scores": orig, "correct": is_correct(orig, **truth),
            "careful": careful, "flags": flags}


def trajectories(rows, items: dict) -> list[dict]:
    """``trajectory`` of every row this script can read; the others are counted by reason and reported."""
    out, skipped = [], collections.Counter()
    for r in rows:
        item = items.get(r["item_id"])
        try:
            if item is None:
                raise ValueError("its item is not in the items table")
            out.append(trajectory(r, item))
        except ValueError as e:
            skipped[str(e)] += 1
    for why, n in skipped.items():
        print(f"skipped {n} trajectories: {why}")
    if not out:
        raise SystemExit("no miniature-world trajectories to analyse (run `grm run --config configs/tiny.yaml` first)")
    return out


def train_meta_rm(path: str, rows: list[dict], a) -> list[float]:
    """The pipeline's own meta-RM trainer (grm.training.metarm as a child job, as metarm_train runs it) on
    ``rows``; returns the held-out rows' logits from the pipeline's scorer (grm.reward.HFMetaScorer)."""
    from grm.config import TrainerConfig
    from grm.reward import HFMetaScorer
    from grm.training.launch import run_job

    train = TrainerConfig(learning_rate=a.lr, batch_size=a.bs, per_device_batch_size=a.bs, max_steps=a.steps,
                          save_steps=a.steps, warmup_ratio=0.05)
    spec = {"model": path, "train": train.model_dump(mode="json"), "seed": a.seed, "dtype": "float32",
            "params": {"max_length": a.max_length}, "card": {"stage": "bench", "description": "bench/miniworld_metarm.py"}}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-metarm-") as job:
        result = run_job("metarm", job, spec, [{"text": r["text"], "label": r["label"], "split": r["side"]} for r in rows])
        print(f"trained {a.steps} x {a.bs} in {time.time() - t0:.0f}s (pipeline trainer)")
        scorer = HFMetaScorer(result["model_dir"], device="cpu", max_length=a.max_length, batch_size=64)
        return scorer([r["text"] for r in rows if r["side"] == "heldout"])


def checker_score(rs):
    """0 for a shortcut, else 1 + the number of the working's checks that pass (equal scores: the earlier
    sample is kept, as metarm_select does; the AUCs count them one half)."""
    return [1 + sum(r["flags"].values()) if r["careful"] else 0 for r in rs]


def breakdown(trajs: list[dict]) -> str:
    """How often each kind of trajectory is right: shortcut, careful with a flawless working, careful with a slip."""
    kinds = collections.defaultdict(list)
    for r in trajs:
        kinds["shortcut" if not r["careful"] else "flawless" if all(r["flags"].values()) else "slipped"].append(r["correct"])
    return ", ".join(f"{k} {len(v)} ({100 * sum(v) / len(v):.0f}% right)" for k, v in sorted(kinds.items()))


def decided_right(sel: list[dict], item: dict, tag: str) -> bool:
    """Credit as `evaluate` gives it on the miniature world: the voted argmax is the labelled best, ties
    broken by the same seeded rank (grm.evaluation.sql); single items: the voted 0/1 label."""
    n = len(item["responses"])
    key = tie_key(item["item_id"], tag)
    v = vote([s["scores"] for s in sel], n, key=key)
    if n == 1:
        lab = binary_label(v, key=key)
        return lab is not None and lab == int(item["ratings"][0] > 0.5)
    return v.best is not None and v.best == item["best"]


def report(trajs: list[dict], items: dict) -> None:
    """ROC-AUC of the ``meta`` scores against correctness, within-item AUC, and voting@k against
    meta-RM-guided voting over each item's GRM samples (``origin`` grm), in sample order."""
    labels = [int(r["correct"]) for r in trajs]
    print(f"ROC-AUC {roc_auc([r['meta'] for r in trajs], labels).value:.1f}%")
    by = collections.defaultdict(list)
    for r in trajs:
        by[r["item_id"]].append(r)
    wins = pairs = 0
    for rs in by.values():
        for x in rs:
            for y in rs:
                if x["correct"] and not y["correct"]:
                    pairs += 1
                    wins += (x["meta"] > y["meta"]) + 0.5 * (x["meta"] == y["meta"])
    print(f"within-item AUC {100 * wins / max(pairs, 1):.1f}% ({pairs} pairs)")
    fresh = {i: sorted((r for r in rs if r["origin"] == "grm"), key=lambda r: r["sample_idx"]) for i, rs in by.items()}
    k_max = min((len(v) for v in fresh.values() if v), default=0)
    fresh = {i: v[:k_max] for i, v in fresh.items() if len(v) >= k_max > 0}
    line = []
    for k in sorted({k for k in (1, 2, 4, 8, k_max) if k <= k_max}):
        km = default_k_meta(k)
        v = m = 0
        for i, rs in fresh.items():
            v += decided_right(rs[:k], items[i], method_tag("voting", k))
            keep = metarm_select([r["meta"] for r in rs[:k]], [r["scores"] is not None for r in rs[:k]], km)
            m += decided_right([rs[j] for j in keep], items[i], method_tag("metarm", k, km))
        line.append(f"k={k}: voting {100 * v / len(fresh):.1f}, metaRM (k_meta {km}) {100 * m / len(fresh):.1f}")
    print(f"{len(fresh)} items' GRM samples: " + "; ".join(line))


def pick(store: Store, name: str, prefix: str | None):
    """The newest table ``name``, or the one whose content hash starts with ``prefix``."""
    refs = [r for r in store.list("tables", name) if not prefix or r.content_hash.startswith(prefix)]
    if not refs:
        raise SystemExit(f"no tables/{name}{'@' + prefix if prefix else ''} in {store.root}")
    return refs[-1]


def on_eval(store: Store, items: dict, prefix: str | None) -> None:
    """The judge stage's eval samples of the final GRM, ranked by the pipeline's meta RM and by the checker
    (analysis only: nothing here is fitted to the eval split)."""
    ref = pick(store, "judgments", prefix)
    rows = store.read_table(ref, columns=["model", "item_id", "decoding", "sample_idx", "prompt", "completion",
                                          "meta_score"]).to_pylist()
    trajs = trajectories(({"text": r["prompt"] + JUDGMENT_MARK + (r["completion"] or ""), "item_id": r["item_id"],
                           "sample_idx": r["sample_idx"], "origin": "grm", "meta_score": r["meta_score"]}
                          for r in rows if r["model"] == "grm" and r["decoding"] == "sample"), items)
    for name, scores in (("pipeline meta RM", [-math.inf if r["meta_score"] is None else r["meta_score"] for r in trajs]),
                         ("working checker", checker_score(trajs))):
        for r, s in zip(trajs, scores):
            r["meta"] = s
        print(f"== {ref.short}, eval split, {name}; samples: {breakdown(trajs)}")
        report(trajs, items)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True)
    p.add_argument("--base", default="base", help="store model to start the classifier from")
    p.add_argument("--checker", action="store_true", help="score by the rule-based working checker, no training")
    p.add_argument("--on-eval", action="store_true", help="analyse the judge stage's eval samples instead (no training)")
    p.add_argument("--table", help="content-hash prefix of the metarm_data (or, with --on-eval, judgments) table")
    p.add_argument("--steps", type=int, default=250)
    p.add_argument("--bs", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--heldout", type=float, default=0.3, help="share of train prompts held out (grm.training.examples.heldout)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    if not (a.checker or a.on_eval):
        import torch

        torch.set_num_threads(a.threads)  # the scorer runs in this process
    store = Store(a.store)
    items = {i["item_id"]: i for i in store.read_rows(store.require("tables", "items"))}
    if a.on_eval:
        return on_eval(store, items, a.table)
    ref = pick(store, "metarm_data", a.table)
    rows = trajectories(store.read_rows(ref), items)
    mism = sum(r["correct"] != bool(r["label"]) for r in rows)
    for r in rows:
        r["side"] = "heldout" if heldout(items[r["item_id"]], a.heldout, a.seed) else "train"
    test = [r for r in rows if r["side"] == "heldout"]
    print(f"{ref.short}: {len(rows) - len(test)} train / {len(test)} held-out trajectories "
          f"({len({r['item_id'] for r in test})} items); label re-derived differently on {mism}")
    print("GRM samples: " + breakdown([r for r in rows if r["origin"] == "grm"]))
    if a.checker:
        scores = checker_score(test)
    else:
        scores = train_meta_rm(str(store.require("models", a.base).path), rows, a)
    for r, s in zip(test, scores):
        r["meta"] = s
    report(test, items)


if __name__ == "__main__":
    try:
        main()
    except NoArtifact as e:
        raise SystemExit(f"bench.miniworld_metarm: {e}") from None
