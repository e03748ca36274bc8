"""What the miniature world's meta RM can learn, measured on held-out *train* items (never the eval split).

Reads a store after a full `grm run` (its newest `metarm_data`, `items` and models), re-splits the meta-RM
trajectories by prompt (--heldout share, as the pipeline splits them), and for each variant reports held-out accuracy and ROC-AUC, the
within-item AUC (a right trajectory ranked above a wrong one of the same item) and, on the held-out items'
fresh GRM samples, voting@k against meta-RM-guided voting (k_meta = k/2, the paper's default).

Variants: `--base NAME` trains a classifier from that store model (base | rft | grm) with a plain torch loop
(the meta RM's own encoding and head: grm.training.metarm); `--checker` instead scores each trajectory by
a program that checks the judgment's *working* the way a perfect process verifier would (careful mode,
right working, responses copied right, verdicts consistent with its own working): the ceiling of a meta RM
that verifies the steps rather than re-solving the task. The checker reads the number families (add, max,
count: tiny.yaml's); tests/test_miniworld.py checks it against teacher judgments of known truth.

python -m bench.miniworld_metarm --store /tmp/final --base base --steps 250
python -m bench.miniworld_metarm --store /tmp/final --checker
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import random
import re
import time

import torch

from grm.metrics import roc_auc
from grm.miniworld.families import TASKS
from grm.parsing import BINARY, GRADED, parse_scores
from grm.prompts import JUDGMENT_MARK
from grm.rules import is_correct, item_truth
from grm.shuffling import to_original
from grm.training.examples import heldout
from grm.voting import binary_label, default_k_meta, metarm_select, method_tag, tie_key, vote
from storage.store import Store

SHOWN = re.compile(r"^Response (\d+): (.*)$", re.M)  # configs/templates/miniworld_response.txt
SAID = re.compile(r"Response (\d+): ([^,]+), a (match|mismatch)")


def trajectory(row: dict, item: dict) -> dict:
    """The row's shown order (recovered from the prompt: a miniature item's responses are distinct), its
    scores in the original order and its correctness, plus the checker's flags."""
    prompt, _, judgment = row["text"].partition(JUDGMENT_MARK)
    resp = list(item["responses"])
    shown = [v for _, v in SHOWN.findall(prompt)] if len(resp) > 1 else resp
    perm = [resp.index(v) for v in shown]
    n = len(resp)
    status, sc = parse_scores(judgment, n, BINARY if n == 1 else GRADED)
    orig = to_original(sc, perm) if sc else None
    meta = json.loads(item["meta"])
    task = TASKS[meta["task"]]
    answer = meta["answer"]
    careful = "glance" not in judgment
    analysis = judgment.split("Analysis:", 1)[-1]
    m = re.match(r"\s*(.*?)\.(?:\s|$)", analysis)
    working = m.group(1) if m else ""
    claimed = re.sub(r" times$", "", working).rsplit(" ", 1)[-1] if working else None
    said = SAID.findall(judgment)
    flags = {
        "working": careful and task.working(meta["args"], answer) == working,
        "copies": careful and all(int(i) <= n and shown[int(i) - 1] == v for i, v, _ in said),
        "verdicts": careful and all((v == claimed) == (mm == "match") for _, v, mm in said),
    }
    truth = item_truth(item["label_kind"], item["best"], item["ratings"])
    return {**row, "scores": orig, "ok": status == "ok", "correct": is_correct(orig, **truth), "careful": careful,
            "flags": flags, "item": item}


def train_classifier(path: str, rows: list[dict], a) -> callable:
    from grm.training.metarm import encode, load_classifier
    from grm.training.tokenizers import load_tokenizer

    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    tok = load_tokenizer(path)
    model = load_classifier(path, tok, torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    warm = max(1, a.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, a.steps) / a.steps)))

    def batch(rs):
        return tok.pad(encode(tok, [r["text"] for r in rs], a.max_length), return_tensors="pt")

    t0, order = time.time(), []
    model.train()
    for step in range(1, a.steps + 1):
        if len(order) < a.bs:
            order = list(range(len(rows)))
            rng.shuffle(order)
        b = [rows[order.pop()] for _ in range(a.bs)]
        logits = model(**batch(b)).logits.squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([float(r["label"]) for r in b]))
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
    model.eval()

    @torch.no_grad()
    def score(rs):
        out = []
        for i in range(0, len(rs), 64):
            out += model(**batch(rs[i:i + 64])).logits.squeeze(-1).tolist()
        return out

    print(f"trained {a.steps} x {a.bs} in {time.time() - t0:.0f}s")
    return score


def checker_score(rs):
    """0 for a shortcut, else 1 + the number of the working's checks that pass (ties broken by order)."""
    return [(1 + sum(r["flags"].values()) if r["careful"] else 0) + 1e-6 * i for i, r in enumerate(rs)]


def breakdown(trajs: list[dict]) -> str:
    """How often each kind of trajectory is right: shortcut, careful with a flawless working, careful with a slip."""
    kinds = collections.defaultdict(list)
    for r in trajs:
        kinds["shortcut" if not r["careful"] else "flawless" if all(r["flags"].values()) else "slipped"].append(r["correct"])
    return ", ".join(f"{k} {len(v)} ({100 * sum(v) / len(v):.0f}% right)" for k, v in sorted(kinds.items()))


def decided_right(sel: list[dict], item: dict, tag: str) -> bool:
    """Credit as `evaluate` gives it on the miniature world: the voted argmax is the labelled best, ties
    broken by the same seeded rank (grm.benchmarks); single items: the voted 0/1 label."""
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
    trajs = [trajectory({"text": r["prompt"] + JUDGMENT_MARK + r["completion"], "item_id": r["item_id"],
                         "sample_idx": r["sample_idx"], "origin": "grm", "meta_score": r["meta_score"]}, items[r["item_id"]])
             for r in rows if r["model"] == "grm" and r["decoding"] == "sample"]
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
    torch.set_num_threads(a.threads)
    store = Store(a.store)
    items = {i["item_id"]: i for i in store.read_rows(store.require("tables", "items"))}
    if a.on_eval:
        return on_eval(store, items, a.table)
    ref = pick(store, "metarm_data", a.table)
    rows = [trajectory(r, items[r["item_id"]]) for r in store.read_rows(ref)]
    mism = sum(r["correct"] != bool(r["label"]) for r in rows)
    test_side = {i: heldout(items[i], a.heldout, a.seed) for i in {r["item_id"] for r in rows}}
    train = [r for r in rows if not test_side[r["item_id"]]]
    test = [r for r in rows if test_side[r["item_id"]]]
    print(f"{ref.short}: {len(train)} train / {len(test)} held-out trajectories "
          f"({len({r['item_id'] for r in test})} items); label re-derived differently on {mism}")
    print("GRM samples: " + breakdown([r for r in rows if r["origin"] == "grm"]))
    if a.checker:
        scores = checker_score(test)
    else:
        scores = train_classifier(str(store.require("models", a.base).path), train, a)(test)
    for r, s in zip(test, scores):
        r["meta"] = s
    report(test, items)


if __name__ == "__main__":
    main()
