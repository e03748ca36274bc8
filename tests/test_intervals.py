"""95% intervals on every number: Wilson for rates, a cluster bootstrap for headlines and official numbers that
re-runs the benchmark's own protocol, paired differences over the same draws."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from grm.evaluation.intervals import cluster_draws, weighted_auc, wilson
from grm.evaluation.methods import Method
from grm.evaluation.results import results_table
from grm.metrics import roc_auc
from tests.eval_fixtures import evaluate, item, judgment


def test_wilson_matches_the_textbook_values():
    lo, hi = wilson(50.0, 100)
    assert lo == pytest.approx(40.38, abs=0.01) and hi == pytest.approx(59.62, abs=0.01)
    lo, hi = wilson(100.0, 10)  # all right: the interval still leaves room below
    assert hi == pytest.approx(100.0) and lo == pytest.approx(72.25, abs=0.01)
    assert wilson(50.0, 0) == (None, None)


def test_weighted_auc_with_unit_weights_is_the_plain_auc():
    rng = random.Random(1)
    scores = [rng.randint(1, 5) for _ in range(60)]
    labels = [rng.randint(0, 1) for _ in range(60)]
    got = weighted_auc(np.array(scores, float), np.array(labels), np.ones(60))
    assert 100.0 * got == pytest.approx(roc_auc(scores, labels).value)


def test_draws_are_fixed_per_benchmark_and_resample_every_cluster():
    a = cluster_draws(["x", "y", "z"], 50, 0, "judgebench")
    assert np.array_equal(a, cluster_draws(["x", "y", "z"], 50, 0, "judgebench"))
    assert (a.sum(axis=1) == 3).all() and not np.array_equal(a, cluster_draws(["x", "y", "z"], 50, 0, "llmbar"))


def _votes(tmp_path, n_items=60, k=8, seed=0):
    rng = random.Random(seed)
    items, judgments = [], []
    for t in range(n_items):
        iid = f"i{t}"
        items.append(item(iid, "llmbar", "s", ["a", "bb"], best=0))
        judgments.append(judgment("grm", iid, [9, 2] if rng.random() < 0.6 else [2, 9], decoding="greedy"))
        for j in range(k):
            judgments.append(judgment("grm", iid, [9, 2] if rng.random() < 0.6 else [2, 9], idx=j))
    methods = [Method("greedy", 1), Method("voting", 1), Method("voting", k)]
    return results_table(evaluate(tmp_path, items, judgments, methods), bootstrap_draws=400)


def test_every_headline_carries_its_interval_and_differences_are_paired(tmp_path):
    rows = _votes(tmp_path)
    heads = [r for r in rows if r["benchmark"] == "llmbar" and r["subset"] == "all" and r["metric"] == "accuracy"
             and r["method"] in ("greedy", "voting")]
    assert len(heads) == 3
    for r in heads:
        assert r["ci_low"] <= r["value"] <= r["ci_high"] and r["ci_high"] - r["ci_low"] > 5  # 60 items: wide
    (diff,) = [r for r in rows if r["method"] == "difference" and r["metric"] == "voting@8 - voting@1"]
    v8 = next(r["value"] for r in heads if r["k"] == 8 and r["method"] == "voting")
    v1 = next(r["value"] for r in heads if r["k"] == 1 and r["method"] == "voting")
    assert diff["value"] == pytest.approx(v8 - v1) and diff["ci_low"] <= diff["value"] <= diff["ci_high"]
    # subset rates get Wilson's interval
    sub = next(r for r in rows if r["subset"] == "s" and r["metric"] == "accuracy" and r["method"] == "greedy")
    assert (sub["ci_low"], sub["ci_high"]) == pytest.approx(wilson(sub["value"], sub["n"]))


def test_more_items_narrow_the_interval(tmp_path):
    def width(n):
        rows = _votes(tmp_path / str(n), n_items=n)
        r = next(r for r in rows if r["subset"] == "all" and r["method"] == "voting" and r["k"] == 8
                 and r["metric"] == "accuracy")
        return r["ci_high"] - r["ci_low"]

    assert width(240) < width(30)
