"""``results`` rows from the evaluation's aggregates: rows every benchmark gets (per-subset accuracy, parse,
failure and tie rates, ROC-AUC), the benchmark's own section and headline rows (``protocols.PROTOCOLS``), its
official harness number (metric 'official'), ``overall``, chance, paired differences, and the bias rows; every
row with its 95% interval (``grm.evaluation.intervals``)."""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

from grm.evaluation.aggregates import EvalData, GroupSelection, ItemCredit, MatrixCell, RocInput, SubsetAggregate, TwoGames
from grm.evaluation.benchmarks import ALL, JUDGEBENCH_SOURCES, OVERALL, OVERALL_PARTS
from grm.evaluation.intervals import (
    Replicates,
    benchmark_clusters,
    cluster_draws,
    item_weights,
    percentile_interval,
    replicate,
    wilson,
)
from grm.evaluation.protocols import HEADLINE, STRICT, TWO_GAMES, overall_score, percent, protocol
from grm.metrics import roc_auc
from grm.voting import default_k_meta

OFFICIAL = "official"  # (contract) the metric of a benchmark's own harness number
DIFFERENCE = "difference"  # method of the paired-difference rows
CHANCE = "baseline:chance"
# Rates over n items: their interval is Wilson's.
RATE_METRICS = {"accuracy", "accuracy_strict", "best_of_n", "best_of_k", "parse_rate", "failed_rate", "tie_rate",
                "best_of_group", "group_base_rate", "accuracy_best_first", "accuracy_best_last",
                "accuracy_best_shorter", "accuracy_best_longer", "flip_rate", OFFICIAL}


def _row(g, benchmark: str, subset: str, metric: str, value: float, n: int) -> dict:
    return {
        "benchmark": benchmark,
        "subset": subset,
        "method": g[1],
        "k": g[2],
        "k_meta": g[3],
        "metric": metric,
        "value": float(value),
        "n": int(n),
        "model": g[0],
        "ci_low": None,
        "ci_high": None,
    }


def _subset_rows(g, source: str, aggs: Sequence[SubsetAggregate]) -> list[dict]:
    rows = []
    for a in aggs:
        if a.credit is not None:
            rows.append(_row(g, source, a.subset, "accuracy", percent(a.credit), a.n_items))
        if a.strict is not None and a.max_n >= 3:
            rows.append(_row(g, source, a.subset, "best_of_n", percent(a.strict), a.n_strict))
        if a.bok is not None:
            rows.append(_row(g, source, a.subset, "best_of_k", percent(a.bok), a.n_bok))
        if a.n_samples:
            rows.append(_row(g, source, a.subset, "parse_rate", 100.0 * a.n_parsed / a.n_samples, a.n_samples))
        if a.n_group:
            rows.append(_row(g, source, a.subset, "failed_rate", 100.0 * a.n_failed_items / a.n_group, a.n_group))
            rows.append(_row(g, source, a.subset, "tie_rate", 100.0 * a.n_tied_items / a.n_group, a.n_group))
    return rows


def _roc_rows(g, source: str, roc: Sequence[RocInput]) -> tuple[list[dict], float | None]:
    """ROC-AUC per subset and pooled over the benchmark (the pooled value is returned too)."""
    rows = []
    by_subset: dict[str, list[RocInput]] = {}
    for r in roc:
        by_subset.setdefault(r.subset, []).append(r)
    for subset, rs in sorted(by_subset.items()):
        m = roc_auc([r.score for r in rs], [r.label for r in rs])
        rows.append(_row(g, source, subset, "roc_auc", m.value, m.n))
    if not roc:
        return rows, None
    m = roc_auc([r.score for r in roc], [r.label for r in roc])
    rows.append(_row(g, source, ALL, "roc_auc", m.value, m.n))
    return rows, m.value


def _pooled_rates(g, source: str, aggs: Sequence[SubsetAggregate]) -> list[dict]:
    rows = []
    n_samples = sum(a.n_samples for a in aggs)
    if n_samples:
        rows.append(_row(g, source, ALL, "parse_rate", 100.0 * sum(a.n_parsed for a in aggs) / n_samples, n_samples))
    n_group = sum(a.n_group for a in aggs)
    if n_group:
        rows.append(_row(g, source, ALL, "failed_rate", 100.0 * sum(a.n_failed_items for a in aggs) / n_group, n_group))
        rows.append(_row(g, source, ALL, "tie_rate", 100.0 * sum(a.n_tied_items for a in aggs) / n_group, n_group))
    return rows


def _two_game_rows(g, source: str, games: Sequence[TwoGames]) -> list[dict]:
    """JudgeBench's official number: a pair is correct when its two games' signs sum above 0; over all pairs
    played in both orders (micro), and per source (mmlu-pro, livebench-reasoning, livebench-math, livecodebench)."""
    both = [x for x in games if x.games == 2]
    if not both:
        return []
    rows = [_row(g, source, ALL, OFFICIAL, 100.0 * sum(x.total > 0 for x in both) / len(both), len(both))]
    for prefix in JUDGEBENCH_SOURCES:
        part = [x for x in both if x.subset.startswith(prefix)]
        if part:
            rows.append(_row(g, source, prefix, OFFICIAL, 100.0 * sum(x.total > 0 for x in part) / len(part), len(part)))
    return rows


def _official_rows(g, source: str, own_rows: Sequence[tuple], headline: float | None, headline_n: int) -> list[dict]:
    p = protocol(source)
    if p.official == HEADLINE and headline is not None:
        return [_row(g, source, ALL, OFFICIAL, headline, headline_n)]
    if p.official == STRICT:
        return [_row(g, source, ALL, OFFICIAL, v, n) for subset, metric, v, n in own_rows if subset == ALL and metric == STRICT]
    return []


def result_rows(
    aggregates: Iterable[SubsetAggregate],
    roc_inputs: Iterable[RocInput] = (),
    cells: Iterable[MatrixCell] = (),
    selections: Iterable[GroupSelection] = (),
    items: Iterable[ItemCredit] = (),
    two_games: Iterable[TwoGames] = (),
) -> list[dict]:
    """Every ``results`` row of the scoring methods: subset rows, section rows, headlines, official numbers
    and overall."""
    rows: list[dict] = []
    groups: dict[tuple, dict[str, list[SubsetAggregate]]] = {}
    for a in aggregates:
        groups.setdefault((a.model, a.method, a.k, a.k_meta), {}).setdefault(a.source, []).append(a)
    by_item: dict[tuple, dict[str, list[ItemCredit]]] = {}
    for it in items:
        by_item.setdefault((it.model, it.method, it.k, it.k_meta), {}).setdefault(it.source, []).append(it)
    games: dict[tuple[str, str], list[TwoGames]] = {}
    for x in two_games:
        games.setdefault((x.model, x.source), []).append(x)
    rocs: dict[tuple, dict[str, list[RocInput]]] = {}
    for r in roc_inputs:
        rocs.setdefault((r.model, r.method, r.k, r.k_meta), {}).setdefault(r.source, []).append(r)
    cell_map: dict[tuple, dict[str, dict[tuple[int, int], MatrixCell]]] = {}
    for c in cells:
        cell_map.setdefault((c.model, c.method, c.k, c.k_meta), {}).setdefault(c.subset, {})[(c.chosen_style, c.rejected_style)] = c

    for s in selections:
        key = (s.model, s.method, s.k, s.k_meta)
        rows.append(_row(key, s.source, s.subset, "best_of_group", percent(s.picked_correct), s.n_groups))
        rows.append(_row(key, s.source, s.subset, "group_base_rate", percent(s.base_rate), s.n_groups))
    for g in sorted(set(groups) | set(rocs), key=lambda t: tuple("" if x is None else str(x) for x in t)):
        headlines: dict[str, float] = {}
        for source in sorted(set(groups.get(g, {})) | set(rocs.get(g, {}))):
            aggs = sorted(groups.get(g, {}).get(source, []), key=lambda a: a.subset)
            p = protocol(source)
            rows += _subset_rows(g, source, aggs)
            roc_rows, pooled_auc = _roc_rows(g, source, rocs.get(g, {}).get(source, []))
            rows += roc_rows
            own_rows, headline = p.summarize(aggs, cell_map.get(g, {}), by_item.get(g, {}).get(source, []))
            rows += [_row(g, source, *r) for r in own_rows]
            if p.headline_metric == "roc_auc":
                headline = pooled_auc
            if headline is not None:
                headlines[source] = headline
            head_n = next((r["n"] for r in rows[::-1] if r["benchmark"] == source and r["subset"] == ALL
                           and r["metric"] == p.headline_metric and (r["model"], r["method"], r["k"], r["k_meta"]) == g), 0)
            rows += _official_rows(g, source, own_rows, headline, head_n)
            if p.official == TWO_GAMES and g[1] == "greedy":
                rows += _two_game_rows(g, source, games.get((g[0], source), []))
            rows += _pooled_rates(g, source, aggs)
        score = overall_score(headlines)
        if score is not None:
            rows.append(_row(g, OVERALL, ALL, "accuracy", score, len(OVERALL_PARTS)))
    return rows


def bias_result_rows(bias: Sequence[Mapping]) -> list[dict]:
    """``results`` rows (method 'bias') from the bias aggregates: position and length bias, flip rate."""
    out = []
    for r in bias:
        subset = r["subset"] if r["subset"] is not None else ALL

        def add(metric, value, n):
            if value is not None and n:
                out.append({"benchmark": r["source"], "subset": subset, "method": "bias", "k": None, "k_meta": None,
                            "metric": metric, "value": float(value), "n": int(n), "model": r["model"]})

        add("accuracy_best_first", None if r["acc_first"] is None else 100 * r["acc_first"], r["n_first"])
        add("accuracy_best_last", None if r["acc_last"] is None else 100 * r["acc_last"], r["n_last"])
        if r["acc_first"] is not None and r["acc_last"] is not None:
            add("position_gap", 100 * (r["acc_first"] - r["acc_last"]), r["n_first"] + r["n_last"])
        add("accuracy_best_shorter", None if r["acc_shorter"] is None else 100 * r["acc_shorter"], r["n_shorter"])
        add("accuracy_best_longer", None if r["acc_longer"] is None else 100 * r["acc_longer"], r["n_longer"])
        if r["n_pairs"]:
            add("flip_rate", 100 * r["n_flips"] / r["n_pairs"], r["n_pairs"])
    return out


def bootstrap(data: EvalData, draws: int, seed: int) -> dict[tuple, Replicates]:
    """(model, method, k, k_meta, benchmark) -> bootstrap draws of its headline and official number."""
    clusters = benchmark_clusters(data)
    by_group: dict[tuple, list[ItemCredit]] = {}
    for it in data.items:
        by_group.setdefault((it.model, it.method, it.k, it.k_meta, it.source), []).append(it)
    aggs: dict[tuple, list[SubsetAggregate]] = {}
    for a in data.aggregates:
        aggs.setdefault((a.model, a.method, a.k, a.k_meta, a.source), []).append(a)
    cells: dict[tuple, dict[str, dict[tuple[int, int], MatrixCell]]] = {}
    for c in data.cells:
        cells.setdefault((c.model, c.method, c.k, c.k_meta), {}).setdefault(c.subset, {})[(c.chosen_style, c.rejected_style)] = c
    games = {(x.model, x.source, x.item_id): x for x in data.two_games}
    drawn = {b: cluster_draws(cs, draws, seed, b) for b, cs in clusters.items()}
    out = {}
    for key, items in by_group.items():
        source = key[4]
        p = protocol(source)
        two = None
        if p.official == TWO_GAMES and key[1] == "greedy":
            two = np.array([float(games[(key[0], source, it.item_id)].total > 0)
                            if (key[0], source, it.item_id) in games and games[(key[0], source, it.item_id)].games == 2
                            else np.nan for it in items])
        w = item_weights(items, clusters[source], drawn[source])
        out[key] = replicate(p, aggs.get(key, []), cells.get(key[:4], {}), items, w, two)
    return out


def _headline_value(rows: Sequence[dict], key: tuple) -> dict | None:
    model, method, k, k_meta, source = key
    metric = protocol(source).headline_metric
    for r in rows:
        if (r["model"], r["method"], r["k"], r["k_meta"], r["benchmark"], r["subset"], r["metric"]) == (
                model, method, k, k_meta, source, ALL, metric):
            return r
    return None


def _tag(method: str, k: int | None, k_meta: int | None) -> str:
    return {"greedy": "greedy", "voting": f"voting@{k}", "metarm": f"metaRM@{k}/{k_meta}"}.get(method, method)


def difference_rows(rows: Sequence[dict], reps: Mapping[tuple, Replicates]) -> list[dict]:
    """Paired differences of headlines, with bootstrap intervals over the same draws: voting@k_max - voting@1
    and metaRM@k_max - voting@k_max per model, and greedy model A - model B."""
    out = []
    benches = sorted({key[4] for key in reps})
    for source in benches:
        keys = [k for k in reps if k[4] == source]
        pairs = []
        for model in sorted({k[0] for k in keys}):
            voting = sorted((k for k in keys if k[0] == model and k[1] == "voting"), key=lambda k: k[2])
            if len(voting) > 1:
                pairs.append((voting[-1], voting[0], model))
                meta = [k for k in keys if k[0] == model and k[1] == "metarm" and k[2] == voting[-1][2]
                        and k[3] == default_k_meta(voting[-1][2])]
                if meta:
                    pairs.append((meta[0], voting[-1], model))
        greedy = sorted((k for k in keys if k[1] == "greedy"), key=lambda k: k[0])
        pairs += [(a, b, f"{a[0]} - {b[0]}") for i, a in enumerate(greedy) for b in greedy[i + 1:]]
        for a, b, model in pairs:
            ra, rb = _headline_value(rows, a), _headline_value(rows, b)
            if ra is None or rb is None or math.isnan(ra["value"]) or math.isnan(rb["value"]):
                continue
            lo, hi = percentile_interval(reps[a].headline - reps[b].headline)
            row = _row((model, DIFFERENCE, None, None), source, ALL, f"{_tag(*a[1:4])} - {_tag(*b[1:4])}",
                       ra["value"] - rb["value"], min(ra["n"], rb["n"]))
            out.append({**row, "ci_low": lo, "ci_high": hi})
    return out


def with_intervals(rows: list[dict], reps: Mapping[tuple, Replicates]) -> list[dict]:
    """Each row's 95% interval: the bootstrap's for headlines and official numbers, Wilson's for other rates."""
    for r in rows:
        if r.get("ci_low") is not None or r["method"] in (DIFFERENCE, CHANCE):
            continue
        key = (r["model"], r["method"], r["k"], r["k_meta"], r["benchmark"])
        rep = reps.get(key)
        draws = None
        if rep is not None and r["subset"] == ALL:
            if r["metric"] == OFFICIAL:
                draws = rep.official
            elif r["metric"] == protocol(r["benchmark"]).headline_metric:
                draws = rep.headline
        if draws is not None:
            r["ci_low"], r["ci_high"] = percentile_interval(draws)
        elif r["metric"] in RATE_METRICS or r["metric"].startswith("matrix["):
            r["ci_low"], r["ci_high"] = wilson(r["value"], r["n"])
    return rows


def chance_rows(chance: Mapping[str, tuple[float, int]]) -> list[dict]:
    """The expected accuracy of a uniformly random pick, per benchmark (reference line of the plot)."""
    return [_row((CHANCE, CHANCE, None, None), b, ALL, "accuracy", v, n) for b, (v, n) in sorted(chance.items())]


def skipped_prompt_rows(skipped: Iterable[Mapping]) -> list[dict]:
    """Per model, decoding and benchmark, how many eval prompts were not sampled because they exceed the context
    budget (metric 'skipped_prompts'; value a count, n the benchmark's judged items): greedy rows, and voting rows
    at the k sampled."""
    rows = []
    for s in skipped:
        g = (s["model"], "greedy", None, None) if s["decoding"] == "greedy" else (s["model"], "voting", s["k"], None)
        rows.append(_row(g, s["benchmark"], ALL, "skipped_prompts", s["n_skipped"], s["n_items"]))
    return rows


def results_table(data: EvalData, *, bootstrap_draws: int = 1000, seed: int = 0) -> list[dict]:
    """The whole ``results`` table of one evaluation: the scoring rows, chance, paired differences, then the
    bias rows; every row with its 95% interval (none when ``bootstrap_draws`` is 0, except Wilson's)."""
    rows = result_rows(data.aggregates, data.roc_inputs, data.cells, data.groups, data.items, data.two_games)
    reps = bootstrap(data, bootstrap_draws, seed) if bootstrap_draws else {}
    rows += chance_rows(data.chance) + difference_rows(rows, reps) + skipped_prompt_rows(data.skipped_prompts)
    for r in bias_result_rows(data.bias_rows):
        rows.append({**r, "ci_low": None, "ci_high": None})
    return with_intervals(rows, reps)
