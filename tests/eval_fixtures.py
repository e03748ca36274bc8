"""Small items / judgments tables for the evaluation tests."""

from __future__ import annotations

import json

from grm.evaluation.aggregates import EvalData
from grm.evaluation.methods import Method
from grm.evaluation.sql import evaluate_judgments
from storage import Store
from storage.sql import connect


def item(iid, source, subset, responses, *, best=None, ratings=None, meta=None, kind=None, split="eval", fmt="test"):
    return {
        "item_id": iid,
        "source": source,
        "format": fmt,
        "split": split,
        "subset": subset,
        "conversation": [{"role": "user", "content": f"question {iid}"}],
        "responses": list(responses),
        "label_kind": kind or ("best" if best is not None else "rating"),
        "best": best,
        "ratings": ratings,
        "meta": json.dumps(meta or {}),
    }


def judgment(model, iid, scores, *, decoding="sample", idx=0, perm=None, meta=None, n=None):
    n = n or (len(scores) if scores is not None else 2)
    return {
        "model": model,
        "item_id": iid,
        "decoding": decoding,
        "sample_idx": idx,
        "seed": idx,
        "permutation": list(perm) if perm is not None else list(range(n)),
        "prompt": "",
        "completion": "" if scores is None else "\\boxed{" + ", ".join(map(str, scores)) + "}",
        "scores": None if scores is None else list(scores),
        "parse_status": "ok" if scores is not None else "no_box",
        "principles": "",
        "critique": "",
        "meta_score": meta,
    }


def greedy(iid, scores, model="grm", perm=None, n=None):
    return judgment(model, iid, scores, decoding="greedy", idx=0, perm=perm, n=n)


def write(tmp_path, items, judgments) -> tuple[Store, object, object]:
    store = Store(tmp_path / "store")
    return store, store.write_table("items", items), store.write_table("judgments", judgments)


def evaluate(tmp_path, items, judgments, methods=(Method("greedy", 1),), **kw) -> EvalData:
    store, iref, jref = write(tmp_path, items, judgments)
    with connect_eval(store, jref, iref) as con:
        return evaluate_judgments(con, list(methods), **kw)


def connect_eval(store: Store, jref, iref):
    """A DuckDB connection with the ``judgments`` and ``items`` views the evaluation reads."""
    return connect(store, views=["judgments", "items"], refs={"judgments": jref, "items": iref})


def value(rows, **where):
    """The single row matching ``where`` (its value), failing clearly when there is none or several."""
    hits = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    assert len(hits) == 1, f"{len(hits)} rows match {where}: {hits[:3]}"
    return hits[0]["value"]
