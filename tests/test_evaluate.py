"""The evaluate stage: results table, scaling plot artifact and UI summary from judgments + items."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.eval_fixtures import item, judgment, value, write
from grm.config import parse_config
from grm.evaluation.report import scaling_series
from storage.sql import run_query
from tasks import evaluate
from tasks.runner import execute, prepare
from tasks.stages import get_stage


def _fixture(k_max=8, seed=0):
    """Pairwise and listwise items; samples get more accurate with more votes (right 60% of the time)."""
    rng = random.Random(seed)
    items, judgments = [], []
    for t in range(24):
        n = 2 if t % 3 else 3
        best = t % n
        src = "llmbar" if t % 2 else "judgebench"
        iid = f"{src}-{t}"
        items.append(item(iid, src, "s1" if t < 12 else "s2", [f"resp {j} " * (j + 1) for j in range(n)], best=best))
        for idx in range(k_max):
            right = rng.random() < 0.6
            scores = [rng.randint(1, 5) for _ in range(n)]
            scores[best if right else (best + 1) % n] = 9
            if rng.random() < 0.1:
                scores = None
            judgments.append(judgment("grm", iid, scores, idx=idx, meta=float(right) + rng.random() / 10, n=n,
                                      perm=rng.sample(range(n), n)))
        judgments.append(judgment("grm", iid, [9 if j == best else 2 for j in range(n)], decoding="greedy", n=n))
        judgments.append(judgment("base", iid, [5] * n, decoding="greedy", n=n))
    return items, judgments


def _run(tmp_path, items, judgments, **config):
    """The evaluate stage through the runner, on these items and judgments: (store, prepared stage, output)."""
    store, _, _ = write(tmp_path, items, judgments)
    cfg = parse_config(config)
    prepared = prepare(get_stage("evaluate"), cfg, store, {})
    return store, prepared, execute(prepared, cfg, store)


def _evaluate(tmp_path, items, judgments, **evaluate_cfg):
    return _run(tmp_path, items, judgments, evaluate=evaluate_cfg)[2]


def test_evaluate_writes_results_plot_and_summary(tmp_path):
    items, judgments = _fixture()
    store, prepared, out = _run(tmp_path, items, judgments, evaluate={"k_meta_alternatives": [1]})

    results = out.artifacts["results"]
    man = store.manifest(results)
    assert man["config_hash"] == prepared.config_hash and set(man["input_hashes"]) == {"items", "judgments"}
    rows = store.read_rows(results)
    assert out.rows_out == len(rows) > 0
    # every method and k of the grid, for each benchmark's headline
    for k in (1, 2, 4, 8):
        value(rows, benchmark="llmbar", subset="all", method="voting", k=k, metric="accuracy", model="grm")
        value(rows, benchmark="llmbar", subset="all", method="metarm", k=k, k_meta=max(1, k // 2), metric="accuracy")
    value(rows, benchmark="llmbar", subset="all", method="metarm", k=8, k_meta=1, metric="accuracy")
    value(rows, benchmark="judgebench", subset="s1", method="greedy", metric="accuracy", model="grm")
    assert value(rows, benchmark="judgebench", subset="all", method="greedy", metric="accuracy", model="grm") == 100.0
    # the base model's all-equal scores are ties: JudgeBench counts them wrong
    assert value(rows, benchmark="judgebench", subset="all", method="greedy", metric="accuracy", model="base") == 0.0
    assert value(rows, benchmark="judgebench", subset="all", method="greedy", metric="tie_rate", model="base") == 100.0
    assert [r for r in rows if r["method"] == "bias" and r["metric"] == "flip_rate"]
    assert [r for r in rows if r["method"] == "baseline:length" and r["subset"] == "all"]
    # the results are queryable with grm sql
    cols, got = run_query(store, "select count(*) from results where method = 'voting'")
    assert got[0][0] > 0

    plot = Path(out.artifacts["plots"].path) / evaluate.PLOT_NAME
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(plot) in out.summary_md
    assert "| llmbar |" in out.summary_md and "grm voting@8" in out.summary_md and "metaRM@8 (k_meta=4)" in out.summary_md
    series = scaling_series(rows)
    assert [p[0] for p in series[("grm", "llmbar", "voting")]] == [1, 2, 4, 8]
    assert [p[0] for p in series[("grm", "judgebench", "metarm")]] == [1, 2, 4, 8]


def test_meta_rm_voting_helps_when_the_meta_score_tracks_correctness(tmp_path):
    items, judgments = _fixture(seed=3)
    rows = evaluate_rows(_evaluate(tmp_path, items, judgments, k_meta_alternatives=[1]))
    vote8 = value(rows, benchmark="llmbar", subset="all", method="voting", k=8, metric="accuracy")
    meta8 = value(rows, benchmark="llmbar", subset="all", method="metarm", k=8, k_meta=4, metric="accuracy")
    # the fixture's meta score is above 1 exactly for right samples: keeping the top one is always right
    top1 = value(rows, benchmark="llmbar", subset="all", method="metarm", k=8, k_meta=1, metric="accuracy")
    assert top1 == 100.0 and top1 >= meta8 >= vote8 and vote8 < 100.0


def evaluate_rows(out):
    from storage import Store

    ref = out.artifacts["results"]
    return Store(Path(ref.path).parents[2]).read_rows(ref)


def test_evaluate_without_samples_reports_greedy_and_the_baseline(tmp_path):
    items, judgments = _fixture()
    judgments = [j for j in judgments if j["decoding"] == "greedy"]
    out = _evaluate(tmp_path, items, judgments, plot=False)
    rows = evaluate_rows(out)
    assert "plots" not in out.artifacts
    assert {r["method"] for r in rows} == {"greedy", "baseline:length", "baseline:chance", "difference", "bias"}
    assert out.metrics["k_values"] == []


def test_judgments_for_unknown_items_and_wrong_score_counts_are_counted(tmp_path):
    items = [item("a", "llmbar", "s", ["x", "yy"], best=0)]
    judgments = [
        judgment("grm", "a", [7, 2], decoding="greedy"),
        judgment("grm", "a", [7, 2, 1], idx=0, n=3),  # three scores for two responses: not usable
        judgment("grm", "ghost", [7, 2], idx=0),
    ]
    out = _evaluate(tmp_path, items, judgments)
    assert out.metrics["skipped_wrong_score_count"] == 1
    assert out.metrics["skipped_judgments_without_item"] == 1
    assert "wrong_score_count = 1" in out.summary_md
    rows = evaluate_rows(out)
    assert value(rows, benchmark="llmbar", subset="s", method="voting", k=1, metric="parse_rate") == 0.0


@pytest.mark.parametrize("single_eval", ["binary", "graded"])
def test_single_response_mode_follows_the_prompt_config(tmp_path, single_eval):
    items = [item("y", "miniworld", "single", ["a"], ratings=[1.0]), item("z", "miniworld", "single", ["a"], ratings=[0.0])]
    judgments = [judgment("grm", "y", [1], decoding="greedy", n=1), judgment("grm", "z", [0], decoding="greedy", n=1)]
    rows = evaluate_rows(_run(tmp_path, items, judgments, prompts={"single_eval": single_eval})[2])
    acc = [r for r in rows if r["benchmark"] == "miniworld" and r["metric"] == "accuracy" and r["subset"] == "single"]
    assert (len(acc) == 1 and acc[0]["value"] == 100.0) if single_eval == "binary" else not acc
    assert value(rows, benchmark="miniworld", subset="single", method="greedy", metric="roc_auc") == 100.0


def test_items_without_subset_are_reported_not_dropped(tmp_path):
    it = item("a", "llmbar", None, ["x", "yy"], best=0)
    out = _evaluate(tmp_path, [it], [judgment("grm", "a", [7, 2], decoding="greedy")])
    rows = evaluate_rows(out)
    assert value(rows, benchmark="llmbar", subset="(none)", method="greedy", metric="accuracy") == 100.0


def test_invalid_labels_and_unknown_decodings_are_counted(tmp_path):
    items = [item("a", "llmbar", "s", ["x", "yy"], best=5), item("b", "llmbar", "s", ["x", "yy"], best=1)]
    judgments = [
        judgment("grm", "a", [7, 2], decoding="greedy"),
        judgment("grm", "b", [7, 2], decoding="greedy"),
        judgment("grm", "b", [7, 2], decoding="beam"),
    ]
    out = _evaluate(tmp_path, items, judgments)
    assert out.metrics["skipped_items_with_invalid_label"] == 1
    assert out.metrics["skipped_unknown_decoding"] == 1
    rows = evaluate_rows(out)
    # the item with a valid label is scored; the other is counted, not scored as right or wrong
    assert value(rows, benchmark="llmbar", subset="s", method="greedy", metric="accuracy", model="grm") == 0.0
    assert [r["n"] for r in rows if r["subset"] == "s" and r["method"] == "greedy" and r["metric"] == "accuracy"] == [1]
