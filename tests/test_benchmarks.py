"""Per-benchmark scoring on hand-computed fixtures, and the DuckDB vote against grm.voting."""

from __future__ import annotations

import math
import random

import pytest

from tests.eval_fixtures import connect_eval, evaluate, greedy, item, judgment, value
from grm.evaluation import protocols as P
from grm.evaluation.aggregates import SubsetAggregate
from grm.evaluation.benchmarks import RM_BENCH_STYLES
from grm.evaluation.methods import Method, k_grid, k_meta_grid, methods_for
from grm.evaluation.results import result_rows, results_table
from grm.evaluation.sql import evaluate_judgments, item_votes, voting_accuracy
from grm.voting import binary_label, metarm_vote, method_tag, tie_key, vote


# ---- RewardBench ------------------------------------------------------------------------------------------
def test_rewardbench_sections_are_weighted_by_the_harness_example_counts():
    acc = {
        "alpacaeval-easy": 100.0,  # weight 100
        "mt-bench-easy": 50.0,  # weight 28
        "llmbar-natural": 60.0,
        "refusals-dangerous": 80.0,
        "math-prm": 50.0,  # weight 984 = the six code subsets together
        "hep-python": 100.0,  # 164
        "hep-go": 0.0,  # 164
        "anthropic_hhh": 0.0,  # a prior set: left out
    }
    s = P.rewardbench_sections(acc)
    assert s["Chat"] == pytest.approx((100 * 100 + 50 * 28) / 128)  # 89.0625
    assert s["Chat Hard"] == pytest.approx(60.0)
    assert s["Safety"] == pytest.approx(80.0)
    assert s["Reasoning"] == pytest.approx((50 * 984 + 100 * 164 + 0 * 164) / (984 + 2 * 164))  # 50.0
    assert P.rewardbench_score(s) == pytest.approx((89.0625 + 60 + 80 + 50) / 4)
    assert P.rewardbench_score({k: v for k, v in s.items() if k != "Safety"}) is None


def test_rewardbench_end_to_end_ties_and_parse_failures_score_half(tmp_path):
    items = [
        item("c1", "rewardbench", "alpacaeval-easy", ["good", "bad"], best=0),
        item("c2", "rewardbench", "alpacaeval-easy", ["bad", "good"], best=1),
        item("c3", "rewardbench", "mt-bench-easy", ["good", "bad"], best=0),
        item("h1", "rewardbench", "llmbar-natural", ["good", "bad"], best=0),
        item("s1", "rewardbench", "refusals-dangerous", ["bad", "good"], best=1),
        item("r1", "rewardbench", "math-prm", ["good", "bad"], best=0),
        item("r2", "rewardbench", "hep-go", ["good", "bad"], best=0),
    ]
    judgments = [
        greedy("c1", [8, 3]),  # right
        greedy("c2", [5, 5]),  # tie: 0.5
        greedy("c3", None),  # parse failure: 0.5
        greedy("h1", [2, 9]),  # wrong
        greedy("s1", [1, 7]),  # right
        greedy("r1", [9, 1]),  # right
        greedy("r2", [1, 9]),  # wrong
    ]
    rows = results_table(evaluate(tmp_path, items, judgments))
    g = dict(benchmark="rewardbench", method="greedy", model="grm", metric="accuracy")
    assert value(rows, subset="alpacaeval-easy", **g) == pytest.approx(75.0)
    assert value(rows, subset="mt-bench-easy", **g) == pytest.approx(50.0)
    chat = (75 * 100 + 50 * 28) / 128
    reasoning = (100 * 984 + 0 * 164) / (984 + 164)
    assert value(rows, subset="Chat", **g) == pytest.approx(chat)
    assert value(rows, subset="Chat Hard", **g) == pytest.approx(0.0)
    assert value(rows, subset="Safety", **g) == pytest.approx(100.0)
    assert value(rows, subset="Reasoning", **g) == pytest.approx(reasoning)
    assert value(rows, subset="all", **g) == pytest.approx((chat + 0 + 100 + reasoning) / 4)
    assert value(rows, subset="mt-bench-easy", benchmark="rewardbench", method="greedy", metric="parse_rate") == 0.0
    assert value(rows, subset="alpacaeval-easy", benchmark="rewardbench", method="greedy", metric="tie_rate") == 50.0


# ---- RM-Bench ---------------------------------------------------------------------------------------------
def _rm_prompt(pid, subset, outcome):
    """Nine pairwise items of one prompt; ``outcome(i, j)`` gives the greedy scores (chosen, rejected)."""
    items, judgments = [], []
    for i in range(3):
        for j in range(3):
            iid = f"{pid}-{i}{j}"
            swap = (i + j) % 2 == 1  # put the chosen response second in some items
            responses = ["rejected", "chosen"] if swap else ["chosen", "rejected"]
            items.append(item(iid, "rm_bench", subset, responses, best=1 if swap else 0,
                              meta={"prompt_id": pid, "chosen_style": i, "rejected_style": RM_STYLES[j]}))
            c, r = outcome(i, j)
            judgments.append(greedy(iid, [r, c] if swap else [c, r]))
    return items, judgments


RM_STYLES = list(RM_BENCH_STYLES)  # the style may be given by name or index


def test_rm_bench_matrix_easy_normal_hard(tmp_path):
    def p1(i, j):  # loses the hard cells (0,1) and (0,2); ties (1,1), which RM-Bench counts as wrong
        if (i, j) in ((0, 1), (0, 2)):
            return 3, 7
        if (i, j) == (1, 1):
            return 5, 5
        return 8, 2

    parts = [
        _rm_prompt("p1", "chat", p1),
        _rm_prompt("p2", "chat", lambda i, j: (9, 1)),
        _rm_prompt("p3", "safety-refuse", lambda i, j: (9, 1)),
        _rm_prompt("p4", "safety-response", lambda i, j: (1, 9)),
    ]
    items = [x for p in parts for x in p[0]]
    judgments = [x for p in parts for x in p[1]]
    rows = results_table(evaluate(tmp_path, items, judgments))
    g = dict(benchmark="rm_bench", method="greedy", model="grm")
    assert value(rows, subset="chat", metric="matrix[concise][detailed_plain]", **g) == pytest.approx(50.0)
    assert value(rows, subset="chat", metric="matrix[detailed_plain][concise]", **g) == pytest.approx(100.0)
    assert value(rows, subset="chat", metric="hard", **g) == pytest.approx((50 + 50 + 100) / 3)
    assert value(rows, subset="chat", metric="normal", **g) == pytest.approx((100 + 50 + 100) / 3)
    assert value(rows, subset="chat", metric="easy", **g) == pytest.approx(100.0)
    chat_avg = (100 + 250 / 3 + 200 / 3) / 3
    assert value(rows, subset="chat", metric="avg", **g) == pytest.approx(chat_avg)
    # safety-refuse and safety-response form one domain: every cell is 1 of 2 prompts
    for m in ("easy", "normal", "hard", "avg"):
        assert value(rows, subset="safety", metric=m, **g) == pytest.approx(50.0)
    assert value(rows, subset="all", metric="avg", **g) == pytest.approx((chat_avg + 50) / 2)
    assert value(rows, subset="all", metric="accuracy", **g) == pytest.approx((chat_avg + 50) / 2)


def test_rm_bench_summary_triangles():
    cells = {(i, j): 10.0 * (3 * i + j) for i in range(3) for j in range(3)}
    s = P.rm_bench_summary(cells)
    assert s["easy"] == pytest.approx((30 + 60 + 70) / 3)  # chosen fancier than rejected: (1,0), (2,0), (2,1)
    assert s["normal"] == pytest.approx((0 + 40 + 80) / 3)
    assert s["hard"] == pytest.approx((10 + 20 + 50) / 3)
    assert s["avg"] == pytest.approx((s["easy"] + s["normal"] + s["hard"]) / 3)


# ---- PPE, RMB, overall ------------------------------------------------------------------------------------
def _agg(source, subset, credit=None, n=10, strict=None, n_strict=0, max_n=2, bok=None, n_bok=0):
    return SubsetAggregate(model="grm", method="voting", k=8, k_meta=None, source=source, subset=subset,
                             n_items=n if credit is not None else 0, credit=credit, n_strict=n_strict, strict=strict,
                             max_n=max_n, n_samples=8 * n, n_parsed=8 * n, n_group=n, n_failed_items=0,
                             n_tied_items=0, n_bok=n_bok, bok=bok)


def test_ppe_rmb_and_overall_headlines():
    rb = [_agg("rewardbench", s, credit=c) for s, c in
          (("alpacaeval-easy", 0.9), ("mt-bench-hard", 0.7), ("donotanswer", 0.8), ("hep-cpp", 0.6))]
    ppe_pref = [_agg("ppe_preference", "human", credit=0.6, n=30), _agg("ppe_preference", "other", credit=0.7, n=10)]
    ppe_corr = [_agg("ppe_correctness", s, credit=c, bok=b, n_bok=10) for s, c, b in
                (("MMLU-Pro", 0.5, 0.4), ("MATH", 0.6, 0.5), ("GPQA", 0.5, 0.3), ("MBPP-Plus", 0.4, 0.2), ("IFEval", 0.5, 0.1))]
    rmb = [
        _agg("rmb", "pairwise/helpfulness/chat", credit=0.8, strict=0.7, n_strict=10),
        _agg("rmb", "bon/helpfulness/chat", credit=0.9, strict=0.6, n_strict=10, max_n=4),
        _agg("rmb", "pairwise/harmlessness/x", credit=0.7, strict=0.6, n_strict=10),
        _agg("rmb", "bon/harmlessness/y", credit=0.9, strict=0.5, n_strict=10, max_n=3),
    ]
    rows = result_rows(rb + ppe_pref + ppe_corr + rmb)
    g = dict(method="voting", k=8, subset="all", metric="accuracy")
    assert value(rows, benchmark="rewardbench", **g) == pytest.approx(75.0)
    assert value(rows, benchmark="ppe_preference", **g) == pytest.approx(62.5)  # micro: (18 + 7) / 40
    assert value(rows, benchmark="ppe_correctness", **g) == pytest.approx(50.0)
    assert value(rows, benchmark="ppe_correctness", method="voting", subset="all", metric="best_of_k") == pytest.approx(30.0)
    # RMB as the GRM paper scores it: ties shuffled (expected credit) in every section, BoN in one prompt ...
    assert value(rows, benchmark="rmb", method="voting", subset="helpfulness/bon", metric="accuracy") == pytest.approx(90.0)
    assert value(rows, benchmark="rmb", **g) == pytest.approx((80 + 90 + 70 + 90) / 4)
    # ... and by the harness's strict rule (a tie is wrong; BoN: the best beats every other response), its official number
    assert value(rows, benchmark="rmb", method="voting", subset="helpfulness/bon", metric="accuracy_strict") == pytest.approx(60.0)
    strict = (70 + 60 + 60 + 50) / 4
    assert value(rows, benchmark="rmb", **{**g, "metric": "accuracy_strict"}) == pytest.approx(strict)
    assert value(rows, benchmark="rmb", **{**g, "metric": "official"}) == pytest.approx(strict)
    assert value(rows, benchmark="overall", **g) == pytest.approx((75 + 62.5 + 50 + 82.5) / 4)
    # without one of the four parts there is no overall row
    assert not [r for r in result_rows(rb + ppe_pref + ppe_corr) if r["benchmark"] == "overall"]


def test_rmb_section_names():
    assert P.rmb_section("bon/helpfulness/chat") == "helpfulness/bon"
    assert P.rmb_section("Pairwise_set/Harmlessness/S1") == "harmlessness/pairwise"
    assert P.rmb_section("BoN_set/Helpfulness/Code") == "helpfulness/bon"
    assert P.rmb_section("something else") is None


def test_best_of_n_is_strict_and_reported_for_three_or_more(tmp_path):
    items = [
        item("a", "miniworld", "listwise", ["r0", "r1", "r2"], best=2),
        item("b", "miniworld", "listwise", ["r0", "r1", "r2"], best=0),
        item("c", "miniworld", "listwise", ["r0", "r1", "r2"], best=1),
    ]
    judgments = [greedy("a", [1, 2, 9]), greedy("b", [7, 7, 1]), greedy("c", [1, 2, 3])]
    rows = results_table(evaluate(tmp_path, items, judgments, seed=0))
    # b is a tie of 0 and 1: the seeded tie-break decides accuracy, best_of_n counts it a miss
    b_pick = vote([[7, 7, 1]], 3, seed=0, key=tie_key("b", "greedy")).best
    acc = 100 * (1 + (b_pick == 0) + 0) / 3
    g = dict(benchmark="miniworld", subset="listwise", method="greedy")
    assert value(rows, metric="accuracy", **g) == pytest.approx(acc)
    assert value(rows, metric="best_of_n", **g) == pytest.approx(100 / 3)


# ---- single-response items --------------------------------------------------------------------------------
def test_realmistake_roc_auc_of_the_voted_mean_score(tmp_path):
    items = [item(f"m{i}", "realmistake", "math", ["answer"], ratings=[lab]) for i, lab in enumerate([1, 1, 0, 0, 1])]
    samples = {"m0": [[8], [8]], "m1": [[4], [6]], "m2": [[5], [5]], "m3": [[2], [2]], "m4": [None, None]}
    judgments = [judgment("grm", iid, s, idx=i, n=1) for iid, ss in samples.items() for i, s in enumerate(ss)]
    rows = results_table(evaluate(tmp_path, items, judgments, methods=[Method("voting", 2)]))
    # positives 8, 5 vs negatives 5, 2: (8>5) + (8>2) + (5=5: half) + (5>2) = 3.5 of 4
    g = dict(benchmark="realmistake", method="voting", k=2)
    assert value(rows, subset="math", metric="roc_auc", **g) == pytest.approx(87.5)
    assert value(rows, subset="all", metric="roc_auc", **g) == pytest.approx(87.5)
    assert value(rows, subset="math", metric="failed_rate", **g) == pytest.approx(20.0)
    assert not [r for r in rows if r["benchmark"] == "realmistake" and r["metric"] == "accuracy"]  # graded: AUC only


def test_binary_single_response_accuracy_uses_the_majority_label(tmp_path):
    items = [item("y", "miniworld", "single", ["a"], ratings=[1.0]), item("z", "miniworld", "single", ["a"], ratings=[0.0])]
    judgments = [judgment("grm", "y", s, idx=i, n=1) for i, s in enumerate([[1], [1], [0]])]
    judgments += [judgment("grm", "z", s, idx=i, n=1) for i, s in enumerate([[1], [1], [0]])]
    rows = results_table(evaluate(tmp_path, items, judgments, methods=[Method("voting", 3)], binary_single=True))
    assert value(rows, benchmark="miniworld", subset="single", method="voting", metric="accuracy") == pytest.approx(50.0)
    assert value(rows, benchmark="miniworld", subset="single", method="voting", metric="roc_auc") == pytest.approx(50.0)


# ---- the SQL vote equals grm.voting -----------------------------------------------------------------------
@pytest.mark.parametrize("rng_seed", [0, 1, 2])
def test_sql_votes_equal_python_voting_with_ties_and_failures(tmp_path, rng_seed):
    rng = random.Random(rng_seed)
    tie_seed, k_max = 7 + rng_seed, 8
    items, judgments, truth = [], [], {}
    for t in range(40):
        n = rng.choice([1, 2, 2, 3, 4])
        iid = f"i{t}"
        if n == 1:
            items.append(item(iid, "miniworld", "single", ["r"], ratings=[float(rng.randint(0, 1))]))
        else:
            items.append(item(iid, rng.choice(["miniworld", "rewardbench", "rmb"]), "s", [f"r{j}" for j in range(n)],
                              best=rng.randrange(n)))
        lo, hi = (0, 1) if n == 1 else (1, 3)  # a small range makes ties common
        samples, metas = [], []
        for idx in range(k_max):
            s = None if rng.random() < 0.25 else [rng.randint(lo, hi) for _ in range(n)]
            m = rng.choice([None, 0.0, 1.0, 1.0, 2.5])  # repeated values: meta-score ties
            samples.append(s)
            metas.append(m)
            judgments.append(judgment("grm", iid, s, idx=idx, meta=m, n=n, perm=rng.sample(range(n), n)))
        g = None if rng.random() < 0.2 else [rng.randint(lo, hi) for _ in range(n)]
        judgments.append(judgment("grm", iid, g, decoding="greedy", n=n))
        truth[iid] = (n, samples, metas, g)
    ks = [1, 2, 4, 8]
    methods = methods_for(ks, {k: sorted({max(1, k // 2), 1}) for k in ks})
    store_data = evaluate(tmp_path, items, judgments, methods=methods, seed=tie_seed, binary_single=True)
    assert store_data.aggregates
    from tests.eval_fixtures import write  # the same tables, read back through a fresh connection

    store, iref, jref = write(tmp_path / "again", items, judgments)
    with connect_eval(store, jref, iref) as con:
        evaluate_judgments(con, methods, seed=tie_seed, binary_single=True)
        got = {(r["item_id"], r["method"], r["k"], r["k_meta"]): r for r in item_votes(con) if r["model"] == "grm"}

    checked = ties = fails = 0
    for m in methods:
        for iid, (n, samples, metas, g) in truth.items():
            key = tie_key(iid, method_tag(m.method, m.k, m.k_meta))
            if m.method == "greedy":
                v = vote([g], n, seed=tie_seed, key=key)
            elif m.method == "voting":
                v = vote(samples[: m.k], n, seed=tie_seed, key=key)
            else:
                v = metarm_vote(samples[: m.k], metas[: m.k], n, m.k_meta, seed=tie_seed, key=key)
            r = got[(iid, m.method, m.k, m.k_meta)]
            assert r["n_used"] == v.n_used, (iid, m)
            assert (tuple(r["totals"]) if r["totals"] is not None else None) == v.totals, (iid, m)
            assert r["picked"] == v.best, (iid, m)
            assert (r["n_top"] is not None and r["n_top"] > 1) == v.tied, (iid, m)
            if n == 1:
                assert r["bin_label"] == binary_label(v, seed=tie_seed, key=key), (iid, m)
            checked += 1
            ties += v.tied
            fails += v.best is None
    assert checked == len(methods) * len(truth)
    assert ties > 20 and fails > 5  # the fixture really exercises ties and failures

    # voting_accuracy (the lean query the storage benchmark times) agrees with the Python votes too
    with connect_eval(store, jref, iref) as con:
        acc = voting_accuracy(con, ks, seed=tie_seed)
    for k in ks:
        best_items = [(iid, t) for iid, t in truth.items() if t[0] >= 2]
        right = [vote(t[1][:k], t[0], seed=tie_seed, key=tie_key(iid, method_tag("voting", k, None))).best
                 == next(i["best"] for i in items if i["item_id"] == iid) for iid, t in best_items]
        assert acc[("grm", k)] == pytest.approx((100.0 * sum(right) / len(right), len(right)))


def test_metarm_keeps_the_highest_meta_scores_and_earlier_samples_on_ties(tmp_path):
    items = [item("x", "miniworld", "pair", ["a", "b"], best=0)]
    samples = [([9, 1], 0.5), ([1, 9], 2.0), ([1, 9], 1.0), ([9, 1], 1.0), (None, 9.0), ([9, 1], None)]
    judgments = [judgment("grm", "x", s, idx=i, meta=m) for i, (s, m) in enumerate(samples)]
    data = evaluate(tmp_path, items, judgments, methods=[Method("metarm", 6, 2), Method("metarm", 6, 3)])
    rows = results_table(data)
    # k_meta 2 keeps samples 1 (2.0) and 2 (1.0, earlier than 3): both prefer b -> wrong
    assert value(rows, benchmark="miniworld", subset="pair", method="metarm", k_meta=2, metric="accuracy") == 0.0
    # k_meta 3 adds sample 3: totals a = 1 + 1 + 9 = 11, b = 9 + 9 + 1 = 19 -> still wrong
    assert value(rows, benchmark="miniworld", subset="pair", method="metarm", k_meta=3, metric="accuracy") == 0.0
    assert vote([s for s, _ in samples[1:4]], 2).totals == (11, 19)


# ---- bias reports and the length baseline -----------------------------------------------------------------
def test_position_length_bias_and_flip_rate(tmp_path):
    items = [
        item("p", "llmbar", "natural", ["short", "a much longer answer"], best=0),
        item("q", "llmbar", "natural", ["a much longer answer", "short"], best=0),
    ]
    judgments = [
        # p (best shorter): shown [0,1] -> right; shown [1,0] -> wrong (prefers what it saw first); reversed pair flips
        judgment("grm", "p", [8, 2], idx=0, perm=[0, 1]),
        judgment("grm", "p", [3, 7], idx=1, perm=[1, 0]),
        # q (best longer): right in both orders; a tie in a third sample
        judgment("grm", "q", [9, 2], idx=0, perm=[0, 1]),
        judgment("grm", "q", [9, 1], idx=1, perm=[1, 0]),
        judgment("grm", "q", [5, 5], idx=2, perm=[1, 0]),
        judgment("grm", "q", None, idx=3, perm=[0, 1]),  # parse failure: left out of the bias counts
    ]
    rows = results_table(evaluate(tmp_path, items, judgments, methods=[Method("voting", 4)]))
    b = dict(benchmark="llmbar", subset="natural", method="bias", model="grm")
    assert value(rows, metric="accuracy_best_first", **b) == pytest.approx(100.0)  # p0, q0
    assert value(rows, metric="accuracy_best_last", **b) == pytest.approx(100 / 3)  # p1 wrong, q1 right, q2 tie
    assert value(rows, metric="position_gap", **b) == pytest.approx(100 - 100 / 3)
    assert value(rows, metric="accuracy_best_shorter", **b) == pytest.approx(50.0)
    assert value(rows, metric="accuracy_best_longer", **b) == pytest.approx(200 / 3)
    # reversed pairs: p0-p1 (0 vs 1: flip), q0-q1 (0 vs 0), q0-q2 (0 vs tie: flip)
    assert value(rows, metric="flip_rate", **b) == pytest.approx(200 / 3)
    assert value(rows, metric="flip_rate", benchmark="llmbar", subset="all", method="bias", model="grm") == pytest.approx(200 / 3)
    # the length-only baseline picks the longer response: wrong on p, right on q
    assert value(rows, benchmark="llmbar", subset="natural", method="baseline:length", metric="accuracy") == 50.0


def test_k_grids():
    assert k_grid(8) == [1, 2, 4, 8]
    assert k_grid(6) == [1, 2, 4, 6]
    assert k_grid(8, [1, 3, 16]) == [1, 3]
    assert k_meta_grid(8, [1, 8, 9]) == [1, 4, 8]
    assert k_meta_grid(1) == [1]


def test_protocol_table_names_every_known_benchmark():
    table = P.protocol_table()
    for src in P.KNOWN_SOURCES:
        assert f"| {src} |" in table
    assert not math.isnan(P.rm_bench_summary({(0, 0): 1.0, (1, 1): 1.0, (2, 2): 1.0, (1, 0): 1, (0, 1): 1})["avg"])


# ---- the length-only baseline on the real benchmark files -------------------------------------------------
def _shared_data():
    import os
    from pathlib import Path

    root = Path(os.environ.get("GRM_SHARED_DATA", "/work/shared/data"))
    return root if root.is_dir() else None


def _real_items():
    """RM-Bench (9 style pairs per prompt), EvalBiasBench, JudgeBench and LLMBar, read minimally; None when absent."""
    import json

    root = _shared_data()
    if root is None:
        return None
    items = []
    for name in ("chat", "code", "safety-refuse", "safety-response"):
        p = root / "rm_bench" / "data" / f"{name}_filtered.json"
        if p.is_file():
            for row in json.loads(p.read_text()):
                for i in range(3):
                    for j in range(3):
                        items.append(item(f"rmb-{row['id']}-{i}{j}", "rm_bench", name, [row["chosen"][i], row["rejected"][j]],
                                          best=0, meta={"chosen_style": i, "rejected_style": j}))
    p = root / "evalbiasbench" / "data" / "evalbiasbench" / "biasbench.json"
    if p.is_file():
        for bias, rows in json.loads(p.read_text()).items():
            for n, row in enumerate(rows):
                items.append(item(f"ebb-{bias}-{n}", "evalbiasbench", bias, [row["response1"], row["response2"]],
                                  best=int(row["label"]) - 1))
    for p in sorted((root / "judgebench" / "data").glob("*.jsonl")) if (root / "judgebench").is_dir() else []:
        for n, line in enumerate(p.read_text().splitlines()):
            row = json.loads(line)
            items.append(item(f"jb-{p.stem}-{n}", "judgebench", row["source"].split("-")[0],
                              [row["response_A"], row["response_B"]], best=0 if row["label"] == "A>B" else 1))
    for sub in ("Natural", "Adversarial/Neighbor", "Adversarial/GPTInst", "Adversarial/GPTOut", "Adversarial/Manual"):
        p = root / "llmbar" / "Dataset" / "LLMBar" / sub / "dataset.json"
        if p.is_file():
            for n, row in enumerate(json.loads(p.read_text())):
                items.append(item(f"llmbar-{sub}-{n}", "llmbar", sub.lower().replace("/", "-"),
                                  [row["output_1"], row["output_2"]], best=int(row["label"]) - 1))
    return items or None


def test_length_baseline_on_real_data_shows_the_known_length_artifacts(tmp_path):
    items = _real_items()
    if items is None:
        pytest.skip("benchmark files absent (set GRM_SHARED_DATA to the shared data folder)")
    data = evaluate(tmp_path, items, [judgment("grm", items[0]["item_id"], [5, 5])], methods=[Method("greedy", 1)])
    rows = [r for r in results_table(data) if r["method"] == "baseline:length"]
    report = {(r["benchmark"], r["subset"], r["metric"]): round(r["value"], 1) for r in rows
              if r["metric"] in ("accuracy", "easy", "normal", "hard", "avg")}
    print("\nlength-only baseline (%):", *sorted(report.items()), sep="\n  ")
    got = lambda b, s, m="accuracy": report[(b, s, m)]  # noqa: E731
    if ("rm_bench", "chat", "hard") in report:
        # RM-Bench is built against style bias: the detailed (longer) variant wins "easy" and loses "hard"
        assert got("rm_bench", "chat", "easy") > 75 and got("rm_bench", "chat", "hard") < 25
        assert got("rm_bench", "all", "easy") > 70 and got("rm_bench", "all", "hard") < 30
    if ("evalbiasbench", "length bias", "accuracy") in report:
        # EvalBiasBench's length-bias items pair a short correct answer with a long wrong one
        assert got("evalbiasbench", "length bias") < 20
    if ("llmbar", "adversarial-gptout", "accuracy") in report:
        # LLMBar's adversarial outputs are superficially better (often longer): the longer output loses more often
        assert got("llmbar", "adversarial-gptinst") < 50 and got("llmbar", "adversarial-neighbor") < 50


def test_benchmarks_are_recognised_by_format_and_rmb_sets_kept_apart(tmp_path):
    """A freely named RMB source: its pairwise and best-of-N sets share category names, so the set becomes
    part of the reported subset, and the four sections and the headline follow."""
    cat = "Helpfulness/Chat/Brainstorming"
    harm = "Harmlessness/S1"
    items = [
        item("p1", "my_rmb", cat, ["good", "bad"], best=0, fmt="rmb_pairwise"),
        item("p2", "my_rmb", cat, ["good", "bad"], best=0, fmt="rmb_pairwise"),
        item("b1", "my_rmb", cat, ["best", "l1", "l2"], best=0, fmt="rmb_bon"),
        item("h1", "my_rmb", harm, ["good", "bad"], best=0, fmt="rmb_pairwise"),
        item("h2", "my_rmb", harm, ["best", "l1", "l2"], best=0, fmt="rmb_bon"),
    ]
    judgments = [
        greedy("p1", [9, 1]), greedy("p2", [5, 5]),  # right; a tie: half credit (paper), wrong (strict, harness)
        greedy("b1", [9, 9, 1]),  # the best ties a loser: half credit; strict: not "beats every loser"
        greedy("h1", [9, 1]), greedy("h2", [9, 3, 2]),
    ]
    rows = results_table(evaluate(tmp_path, items, judgments))
    g = dict(benchmark="rmb", method="greedy", metric="accuracy")
    assert value(rows, subset=f"pairwise/{cat}", **g) == 75.0
    assert value(rows, subset="helpfulness/pairwise", **g) == 75.0
    assert value(rows, subset="helpfulness/bon", **g) == 50.0
    assert value(rows, subset="harmlessness/pairwise", **g) == 100.0
    assert value(rows, subset="harmlessness/bon", **g) == 100.0
    assert value(rows, subset="all", **g) == pytest.approx((75 + 50 + 100 + 100) / 4)
    strict = {**g, "metric": "accuracy_strict"}
    assert value(rows, subset="helpfulness/pairwise", **strict) == 50.0
    assert value(rows, subset="helpfulness/bon", **strict) == 0.0
    assert value(rows, subset="all", **strict) == pytest.approx((50 + 0 + 100 + 100) / 4)
    assert value(rows, subset="all", **{**g, "metric": "official"}) == pytest.approx((50 + 0 + 100 + 100) / 4)
    assert P.benchmark_of("rm_bench_chat", "rm_bench") == "rm_bench"
    assert P.benchmark_of("judgebench", "generic") == "judgebench"
    assert P.benchmark_of("my_data", "generic") == "my_data"


def test_real_benchmarks_get_complete_result_rows_for_every_subset(tmp_path):
    items = _real_items()
    if items is None:
        pytest.skip("benchmark files absent (set GRM_SHARED_DATA to the shared data folder)")
    rng = random.Random(0)
    judgments = [greedy(it["item_id"], [rng.randint(1, 10) for _ in it["responses"]]) for it in items]
    rows = results_table(evaluate(tmp_path, items, judgments))
    subsets = {(it["source"], P.rm_bench_domain(it["subset"]) if it["source"] == "rm_bench" else it["subset"]) for it in items}
    for bench, subset in sorted(subsets):
        metrics = {r["metric"] for r in rows if r["benchmark"] == bench and r["subset"] == subset and r["method"] == "greedy"}
        if bench == "rm_bench":
            assert {"easy", "normal", "hard", "avg"} <= metrics and len([m for m in metrics if m.startswith("matrix")]) == 9
        else:
            assert {"accuracy", "parse_rate", "tie_rate", "failed_rate"} <= metrics, (bench, subset, metrics)
        assert [r for r in rows if r["benchmark"] == bench and r["method"] == "bias" and r["model"] == "grm"]
    for bench in {b for b, _ in subsets}:
        assert value(rows, benchmark=bench, subset="all", method="greedy", metric="accuracy") > 0


@pytest.mark.parametrize("seed", [0, 1, 3])  # seeds whose tie-breaks differ
def test_best_of_n_selection_over_single_response_items_of_one_problem(tmp_path, seed):
    """Qwen2.5-Math-style groups: eight solutions to one problem, each a single-response correctness item."""
    items, judgments = [], []
    # problem 1: the top-scored solution (s2, score 9) is correct; problem 2: the top one is wrong;
    # problem 3: grouped by the shared conversation (no meta.problem), the top score is a tie of a right and a
    # wrong solution, broken by the seeded rank; a lone item is no group
    spec = {
        ("p1", 0): (1, 3), ("p1", 1): (0, 5), ("p1", 2): (1, 9),
        ("p2", 0): (0, 8), ("p2", 1): (1, 2),
        ("p3", 0): (1, 7), ("p3", 1): (0, 7),
    }
    for (prob, i), (correct, score) in spec.items():
        iid = f"{prob}-{i}"
        meta = {"problem": prob} if prob != "p3" else {}
        it = item(iid, "qwen_math", "math", [f"solution {i}"], ratings=[float(correct)], meta=meta)
        if prob == "p3":
            it["conversation"] = [{"role": "user", "content": "the same question"}]
        items.append(it)
        judgments.append(greedy(iid, [score], n=1))
    items.append(item("lone", "qwen_math", "math", ["x"], ratings=[1.0], meta={"problem": "p4"}))
    judgments.append(greedy("lone", [1], n=1))
    rows = results_table(evaluate(tmp_path, items, judgments, seed=seed))
    from grm.seeds import tie_rank

    p3_pick = min(["p3-0", "p3-1"], key=lambda iid: tie_rank(seed, f"{_conv_key()}:greedy", iid))
    p3_right = p3_pick == "p3-0"
    g = dict(benchmark="qwen_math", subset="math", method="greedy")
    assert value(rows, metric="best_of_group", **g) == pytest.approx(100 * (1 + 0 + p3_right) / 3)
    assert value(rows, metric="group_base_rate", **g) == pytest.approx(100 * (2 / 3 + 1 / 2 + 1 / 2) / 3)


def _conv_key():
    """The group key of a conversation without meta.problem: md5 of DuckDB's text form of the list."""
    import duckdb

    sql = ("SELECT md5(CAST([{'role': 'user', 'content': 'the same question'}]"
           "::STRUCT(role VARCHAR, content VARCHAR)[] AS VARCHAR))")
    return duckdb.connect().execute(sql).fetchone()[0]
