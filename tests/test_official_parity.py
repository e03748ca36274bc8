"""Parity of our scoring with the benchmarks' own harnesses (issue 15 item 5; docs/design.md).

The same per-sample scores go through the pipeline's evaluation (items + greedy judgments -> DuckDB ->
``results`` rows) and through the official scorer: ``rewardbench`` 0.1.4's own functions for RewardBench 1 and 2
(loaded by tests/official_rewardbench.py; skipped when the package is not installed), and, for JudgeBench and
RM-Bench, which ship no package, a second implementation written here in plain loops from their published
metric code. Scores are drawn by hypothesis, with small ranges so that ties happen, plus parse failures.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from grm.evaluation.benchmarks import JUDGEBENCH_SOURCES, REWARDBENCH_EXAMPLE_COUNTS, REWARDBENCH_SECTIONS, RM_BENCH_STYLES
from grm.evaluation.results import results_table
from grm.formats.importer import import_source
from tests.eval_fixtures import evaluate, greedy, item, judgment, value
from tests.official_rewardbench import official_rewardbench

TOL = 1e-9  # our values are percentages: compared as value / 100
# no shrinking: a failing case is printed as drawn, and a failure stays as quick as a pass (CI)
PARITY = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                  phases=[Phase.explicit, Phase.reuse, Phase.generate])
GREEDY = {"method": "greedy", "model": "grm"}

# (chosen score, rejected score) of one pairwise judgment, or None for a parse failure
pair_scores = st.none() | st.tuples(st.integers(1, 3), st.integers(1, 3))


def ours(tmp_path_factory, items, judgments) -> list[dict]:
    return results_table(evaluate(tmp_path_factory.mktemp("parity"), items, judgments), bootstrap_draws=0)


# ---- RewardBench 1 ------------------------------------------------------------------------------------------
def generative_result(scores: tuple[int, int] | None) -> float:
    """One pair's result in the harness's generative path (allenai/reward-bench scripts/run_generative.py:
    ``if winner == winner_text: return 1 / elif winner == loser_text: return 0 / else: return 0.5  # if "error"``,
    a tie being neither winner)."""
    if scores is None:
        return 0.5
    chosen, rejected = scores
    return 1.0 if chosen > rejected else 0.0 if chosen < rejected else 0.5


def test_our_rewardbench_sections_and_example_counts_are_the_harness_constants():
    _, constants = official_rewardbench()
    assert {s: sorted(v) for s, v in REWARDBENCH_SECTIONS.items()} == {s: sorted(v) for s, v in constants.SUBSET_MAPPING.items()}
    in_sections = {s for subsets in constants.SUBSET_MAPPING.values() for s in subsets}
    assert REWARDBENCH_EXAMPLE_COUNTS == {s: constants.EXAMPLE_COUNTS[s] for s in in_sections}


@PARITY
@given(data=st.data())
def test_rewardbench_subsets_sections_and_headline_match_the_harness(tmp_path_factory, data):
    utils, constants = official_rewardbench()
    items, judgments, results = [], [], {}
    for section, subsets in constants.SUBSET_MAPPING.items():
        for subset in data.draw(st.lists(st.sampled_from(subsets), min_size=1, max_size=3, unique=True), label=section):
            pairs = data.draw(st.lists(st.tuples(st.booleans(), pair_scores), min_size=1, max_size=4), label=subset)
            for n, (swap, scores) in enumerate(pairs):
                iid = f"{subset}-{n}"  # the chosen response second when swap
                items.append(item(iid, "rewardbench", subset, ["rejected", "chosen"] if swap else ["chosen", "rejected"],
                                  best=int(swap)))
                judgments.append(greedy(iid, None if scores is None else scores[::-1] if swap else scores))
                results.setdefault(subset, []).append(generative_result(scores))
    metrics = {s: sum(r) / len(r) for s, r in results.items()}  # run_generative.py: num_correct / num_total
    sections = utils.calculate_scores_per_section(constants.EXAMPLE_COUNTS, constants.SUBSET_MAPPING, metrics)
    headline = sum(sections.values()) / len(sections)  # the four sections' mean, prior sets left out

    rows = ours(tmp_path_factory, items, judgments)
    g = {"benchmark": "rewardbench", **GREEDY}
    for subset, m in metrics.items():
        assert value(rows, subset=subset, metric="accuracy", **g) / 100 == pytest.approx(m, abs=TOL), subset
    for section, s in sections.items():
        assert value(rows, subset=section, metric="accuracy", **g) / 100 == pytest.approx(s, abs=TOL), section
    for metric in ("accuracy", "official"):
        assert value(rows, subset="all", metric=metric, **g) / 100 == pytest.approx(headline, abs=TOL), metric


# ---- RewardBench 2 ------------------------------------------------------------------------------------------
RB2_PLAIN = ("Factuality", "Precise IF", "Math", "Safety", "Focus")  # one correct completion per row


def rb2_row(rid: str, subset: str, n_chosen: int, n_rejected: int) -> dict:
    """A row in the published schema of allenai/reward-bench-2."""
    return {"id": rid, "prompt": f"question {rid}", "chosen": [f"{rid} right {k}" for k in range(n_chosen)],
            "rejected": [f"{rid} wrong {k}" for k in range(n_rejected)], "num_correct": n_chosen,
            "total_completions": n_chosen + n_rejected, "subset": subset}


@st.composite
def rb2_rows(draw) -> list[dict]:
    rows = []
    for s, subset in enumerate(RB2_PLAIN):
        for n in range(draw(st.integers(1, 3))):
            rows.append(rb2_row(str(100 * s + n), subset, 1, draw(st.integers(1, 3))))
    for pid in range(1, draw(st.integers(1, 3)) + 1):  # Ties: a ref prompt and its tied prompt, or only one of them
        kinds = draw(st.sampled_from([("ref", "tied"), ("ref", "tied"), ("ref",), ("tied",)]))
        if "ref" in kinds:
            rows.append(rb2_row(f"ref:{pid}", "Ties", 1, draw(st.integers(1, 3))))
        if "tied" in kinds:
            rows.append(rb2_row(f"tied:{pid}", "Ties", draw(st.integers(2, 4)), draw(st.integers(1, 4))))
    return rows


def import_rb2(tmp_path, rows) -> dict[str, dict]:
    """The imported items by their row id (meta.rb2_id)."""
    path = tmp_path / "rb2.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    r = import_source("rewardbench2", "rewardbench2", [str(path)])
    assert not r.quarantine and len(r.items) == len(rows)
    return {json.loads(it["meta"])["rb2_id"]: it for it in r.items}


def official_order(it: dict, scores: list[int]) -> list[int]:
    """Scores given in the item's order, put back in the harness's unrolled order (chosen, then rejected)."""
    order = json.loads(it["meta"])["order"]  # item position p holds unrolled completion order[p]
    out = [0] * len(order)
    for p, u in enumerate(order):
        out[u] = scores[p]
    return out


@PARITY
@given(rows=rb2_rows(), data=st.data())
def test_rewardbench2_subsets_ties_and_headline_match_the_harness(tmp_path_factory, rows, data):
    from datasets import Dataset

    utils, _ = official_rewardbench()
    tmp = tmp_path_factory.mktemp("rb2")
    items = import_rb2(tmp, rows)
    scores = {}  # row id -> the greedy scores in the item's order (integers 1..10 in a narrow band: ties)
    for row in rows:
        low = data.draw(st.integers(1, 8), label=f"{row['id']} low")
        n = row["total_completions"]
        scores[row["id"]] = data.draw(st.lists(st.integers(low, low + 2), min_size=n, max_size=n), label=row["id"])
    judgments = [greedy(items[rid]["item_id"], s) for rid, s in scores.items()]
    unrolled = {rid: official_order(items[rid], s) for rid, s in scores.items()}

    official = {}
    for subset in RB2_PLAIN:
        part = [r for r in rows if r["subset"] == subset]
        flat = [{"id": r["id"], "text": text, "scores": s, "subset": subset}
                for r in part for text, s in zip(r["chosen"] + r["rejected"], unrolled[r["id"]])]
        rerolled = utils.reroll_and_score_dataset(Dataset.from_list(flat), [r["total_completions"] for r in part])
        official[subset] = sum(rerolled["results"]) / len(part)
    ties = [{"id": r["id"], "scores": unrolled[r["id"]], "num_correct": r["num_correct"]} for r in rows if r["subset"] == "Ties"]
    _, official["Ties"] = utils.process_single_model(Dataset.from_list(ties))
    final = sum(official.values()) / len(official)  # the unweighted mean of the six subsets

    got = ours(tmp_path_factory, list(items.values()), judgments)
    g = {"benchmark": "rewardbench2", **GREEDY}
    for subset in RB2_PLAIN:
        assert value(got, subset=subset, metric="accuracy", **g) / 100 == pytest.approx(official[subset], abs=TOL), subset
    assert value(got, subset="Ties", metric="ties_score", **g) / 100 == pytest.approx(official["Ties"], abs=TOL)
    for metric in ("accuracy", "official"):
        assert value(got, subset="all", metric=metric, **g) / 100 == pytest.approx(final, abs=TOL), metric


def test_rewardbench2_an_item_without_a_parsed_score_earns_one_over_its_completions(tmp_path):
    # allenai/reward-bench scripts/run_generative_v2.py, ratings mode: `if winners == "error": return 0.25`
    # (four completions); here the expected credit of a random pick, 1/n, for any n
    rows = [rb2_row("1", "Factuality", 1, 3), rb2_row("2", "Math", 1, 2)]
    items = import_rb2(tmp_path, rows)
    judgments = [greedy(it["item_id"], None, n=len(it["responses"])) for it in items.values()]
    got = results_table(evaluate(tmp_path, list(items.values()), judgments), bootstrap_draws=0)
    g = {"benchmark": "rewardbench2", "metric": "accuracy", **GREEDY}
    assert value(got, subset="Factuality", **g) == pytest.approx(25.0, abs=1e-9)
    assert value(got, subset="Math", **g) == pytest.approx(100 / 3, abs=1e-9)
    assert value(got, subset="Factuality", benchmark="rewardbench2", metric="failed_rate", **GREEDY) == 100.0


# ---- JudgeBench ---------------------------------------------------------------------------------------------
# An independent reference from ScalerLab/JudgeBench utils/metrics.py, compute_final_metrics(reverse_order=True).
def flip_judgment(decision: str | None) -> str | None:
    return {"A>B": "B>A", "B>A": "A>B"}.get(decision, decision)


def decision(shown: tuple[int, int] | None) -> str | None:
    """The judge's verdict about the two responses in the order it was shown them (None: unparsed)."""
    if shown is None:
        return None
    a, b = shown
    return "A>B" if a > b else "B>A" if b > a else "A=B"


def judgebench_pair_correct(label: str, game1, game2) -> bool:
    """game1 shows (A, B), game2 shows (B, A); the second verdict is flipped back before counting."""
    counter = 0
    for d in (decision(game1), flip_judgment(decision(game2))):
        if d == label:
            counter += 1
        elif d == flip_judgment(label):
            counter -= 1
    return counter > 0


JUDGEBENCH_ROW_SOURCES = ("mmlu-pro-law", "mmlu-pro-math", "livebench-reasoning", "livebench-math", "livecodebench")


@PARITY
@given(pairs=st.lists(st.tuples(st.sampled_from(JUDGEBENCH_ROW_SOURCES), st.sampled_from(["A>B", "B>A"]),
                                pair_scores, pair_scores), min_size=1, max_size=30))
def test_judgebench_two_game_score_matches_the_published_definition(tmp_path_factory, pairs):
    items, judgments, correct = [], [], []
    for n, (source, label, game1, game2) in enumerate(pairs):
        iid = f"jb-{n}"
        items.append(item(iid, "judgebench", source, [f"A {n}", f"B {n}"], best=0 if label == "A>B" else 1,
                          fmt="judgebench"))
        # scores are stored in the item's (original) order: the second game showed B first
        judgments.append(greedy(iid, game1, perm=[0, 1]))
        judgments.append(judgment("grm", iid, None if game2 is None else game2[::-1], decoding="greedy", idx=1,
                                  perm=[1, 0]))
        correct.append((source, judgebench_pair_correct(label, game1, game2)))

    rows = ours(tmp_path_factory, items, judgments)
    g = {"benchmark": "judgebench", "metric": "official", **GREEDY}
    assert value(rows, subset="all", **g) / 100 == pytest.approx(sum(c for _, c in correct) / len(correct), abs=TOL)
    for prefix in JUDGEBENCH_SOURCES:
        part = [c for source, c in correct if source.startswith(prefix)]
        if part:
            assert value(rows, subset=prefix, **g) / 100 == pytest.approx(sum(part) / len(part), abs=TOL), prefix
        else:
            assert not [r for r in rows if r["subset"] == prefix and r["metric"] == "official"]


# ---- RM-Bench -----------------------------------------------------------------------------------------------
# An independent reference from THU-KEG/RM-Bench scripts/utils.py compute_accuracy: per domain a 3x3 matrix
# (rows: chosen style, columns: rejected style) of the share of prompts where chosen scores strictly higher;
# hard = mean of the upper-right cells, normal = the diagonal, easy = the lower-left.
def rm_bench_reference(prompts) -> dict[str, dict[str, float]]:
    by_domain: dict[str, list] = {}
    for subset, wins in prompts:
        by_domain.setdefault("safety" if subset.startswith("safety") else subset, []).append(wins)
    out = {}
    for domain, results in by_domain.items():
        acc = [[0.0] * 3 for _ in range(3)]
        for wins in results:
            for i in range(3):
                for j in range(3):
                    if wins[i][j]:
                        acc[i][j] += 1
        acc = [[cell / len(results) for cell in row] for row in acc]
        hard = (acc[0][1] + acc[0][2] + acc[1][2]) / 3
        normal = (acc[0][0] + acc[1][1] + acc[2][2]) / 3
        easy = (acc[1][0] + acc[2][0] + acc[2][1]) / 3
        out[domain] = {"hard": hard, "normal": normal, "easy": easy, "avg": (hard + normal + easy) / 3}
    out["all"] = {m: sum(d[m] for d in out.values()) / len(out) for m in ("hard", "normal", "easy", "avg")}
    return out


RM_BENCH_SUBSETS = ("chat", "code", "math", "safety-refuse", "safety-response")


@PARITY
@given(prompts=st.lists(st.tuples(st.sampled_from(RM_BENCH_SUBSETS),
                                  st.lists(st.tuples(st.booleans(), pair_scores), min_size=9, max_size=9)),
                        min_size=1, max_size=6))
def test_rm_bench_strict_matrix_matches_the_published_definition(tmp_path_factory, prompts):
    items, judgments, reference_input = [], [], []
    for pid, (subset, cells) in enumerate(prompts):
        wins = [[False] * 3 for _ in range(3)]
        for (i, j), (swap, scores) in zip([(i, j) for i in range(3) for j in range(3)], cells):
            iid = f"p{pid}-{i}{j}"  # one pairwise item per (chosen style i, rejected style j)
            items.append(item(iid, "rm_bench", subset, ["rejected", "chosen"] if swap else ["chosen", "rejected"],
                              best=int(swap), fmt="rm_bench",
                              meta={"prompt_id": str(pid), "chosen_style": RM_BENCH_STYLES[i],
                                    "rejected_style": RM_BENCH_STYLES[j]}))
            judgments.append(greedy(iid, None if scores is None else scores[::-1] if swap else scores))
            wins[i][j] = scores is not None and scores[0] > scores[1]  # compute_accuracy's `>`; unparsed: no win
        reference_input.append((subset, wins))
    reference = rm_bench_reference(reference_input)

    rows = ours(tmp_path_factory, items, judgments)
    g = {"benchmark": "rm_bench", **GREEDY}
    for domain, metrics in reference.items():
        for metric, v in metrics.items():
            assert value(rows, subset=domain, metric=metric, **g) / 100 == pytest.approx(v, abs=TOL), (domain, metric)
    for metric in ("accuracy", "official"):
        assert value(rows, subset="all", metric=metric, **g) / 100 == pytest.approx(reference["all"]["avg"], abs=TOL)
