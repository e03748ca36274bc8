"""``results`` rows from the evaluation's aggregates: rows every benchmark gets (per-subset accuracy, parse,
failure and tie rates, ROC-AUC), the benchmark's own section and headline rows (``protocols.PROTOCOLS``),
``overall``, and the bias rows."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from grm.evaluation.aggregates import EvalData, GroupSelection, MatrixCell, RocInput, SubsetAggregate
from grm.evaluation.benchmarks import ALL, OVERALL, OVERALL_PARTS
from grm.evaluation.protocols import overall_score, percent, protocol
from grm.metrics import roc_auc


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


def result_rows(
    aggregates: Iterable[SubsetAggregate],
    roc_inputs: Iterable[RocInput] = (),
    cells: Iterable[MatrixCell] = (),
    selections: Iterable[GroupSelection] = (),
) -> list[dict]:
    """Every ``results`` row of the scoring methods: subset rows, section rows, headlines and overall."""
    rows: list[dict] = []
    groups: dict[tuple, dict[str, list[SubsetAggregate]]] = {}
    for a in aggregates:
        groups.setdefault((a.model, a.method, a.k, a.k_meta), {}).setdefault(a.source, []).append(a)
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
            own_rows, headline = p.summarize(aggs, cell_map.get(g, {}))
            rows += [_row(g, source, *r) for r in own_rows]
            if p.headline_metric == "roc_auc":
                headline = pooled_auc
            if headline is not None:
                headlines[source] = headline
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


def skipped_prompt_rows(skipped: Iterable[Mapping]) -> list[dict]:
    """Per model, decoding and benchmark, how many eval prompts were not sampled because they exceed the context
    budget (metric 'skipped_prompts'; value a count, n the benchmark's judged items): greedy rows, and voting rows
    at the k sampled."""
    rows = []
    for s in skipped:
        g = (s["model"], "greedy", None, None) if s["decoding"] == "greedy" else (s["model"], "voting", s["k"], None)
        rows.append(_row(g, s["benchmark"], ALL, "skipped_prompts", s["n_skipped"], s["n_items"]))
    return rows


def results_table(data: EvalData) -> list[dict]:
    """The whole ``results`` table of one evaluation: the scoring rows, then the bias rows."""
    return (result_rows(data.aggregates, data.roc_inputs, data.cells, data.groups) + skipped_prompt_rows(data.skipped_prompts)
            + bias_result_rows(data.bias_rows))
