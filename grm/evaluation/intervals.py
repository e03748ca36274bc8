"""95% intervals for every number in ``results``: Wilson for a rate over n items, a cluster bootstrap over
items for each benchmark's headline and official number (which its protocol computes from subsets, sections,
style cells or prompt sets), and a paired bootstrap for differences (voting@k - voting@1, metaRM@k - voting@k,
model A - model B).

The bootstrap redraws the benchmark's prompts (clusters: RM-Bench's nine style pairs of a prompt, RB2's ref
and tied sets of a prompt, otherwise the item) with replacement, ``B`` times, from a seed fixed per benchmark.
Every (model, method, k) of a benchmark uses the same draws, so a difference is paired item by item. Each
draw re-weights the items and runs the benchmark's own protocol function on the re-weighted aggregates,
so the interval is that of exactly the number reported.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from grm.evaluation.aggregates import EvalData, ItemCredit, MatrixCell, SubsetAggregate
from grm.evaluation.protocols import HEADLINE, STRICT, TWO_GAMES, Protocol

Z95 = 1.959963984540054
Group = tuple  # (model, method, k, k_meta)


def wilson(value_percent: float, n: int) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval (percent) for a rate of ``value_percent`` over ``n`` items."""
    if not n or value_percent is None or math.isnan(value_percent):
        return None, None
    p = min(max(value_percent / 100.0, 0.0), 1.0)
    d = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / d
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / d
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def percentile_interval(draws: np.ndarray) -> tuple[float, float] | tuple[None, None]:
    ok = draws[~np.isnan(draws)]
    if ok.size < 2:
        return None, None
    lo, hi = np.percentile(ok, [2.5, 97.5])
    return float(lo), float(hi)


def _seed(seed: int, benchmark: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{benchmark}".encode()).digest()[:8], "little")


def cluster_draws(clusters: Sequence[str], b: int, seed: int, benchmark: str) -> np.ndarray:
    """(b, len(clusters)) counts: how often each cluster is drawn in each bootstrap sample."""
    n = len(clusters)
    rng = np.random.default_rng(_seed(seed, benchmark))
    picks = rng.integers(0, n, size=(b, n))
    return np.stack([np.bincount(row, minlength=n) for row in picks]) if n else np.zeros((b, 0), dtype=int)


def weighted_auc(scores: np.ndarray, labels: np.ndarray, w: np.ndarray) -> float:
    """ROC-AUC (Mann-Whitney, ties count one half) with item weights."""
    pos, neg = labels == 1, labels == 0
    wp, wn = w[pos].sum(), w[neg].sum()
    if wp == 0 or wn == 0:
        return float("nan")
    order = np.argsort(scores[neg], kind="stable")
    ns, nw = scores[neg][order], np.concatenate([[0.0], np.cumsum(w[neg][order])])
    below = nw[np.searchsorted(ns, scores[pos], side="left")]
    upto = nw[np.searchsorted(ns, scores[pos], side="right")]
    return float(((below + 0.5 * (upto - below)) * w[pos]).sum() / (wp * wn))


@dataclass
class Replicates:
    """Bootstrap draws (percent) of the numbers one (group, benchmark) reports."""

    headline: np.ndarray
    official: np.ndarray | None = None


def _mean_rows(w: np.ndarray, values: list[float | None], mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([np.nan if v is None else v for v in values], dtype=float)
    use = mask & ~np.isnan(x)
    den = w[:, use].sum(axis=1).astype(float)
    num = w[:, use] @ x[use]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan), den


def replicate(
    protocol: Protocol,
    aggs: Sequence[SubsetAggregate],
    cells: Mapping[str, Mapping[tuple[int, int], MatrixCell]],
    items: Sequence[ItemCredit],
    weights: np.ndarray,
    two_game_credit: np.ndarray | None = None,
) -> Replicates:
    """Re-run the protocol on each bootstrap draw. ``weights``: (B, len(items)) draw counts per item;
    ``two_game_credit``: JudgeBench's 0/1 per item (NaN where not both games were played)."""
    b = weights.shape[0]
    subsets = {a.subset: a for a in aggs}
    sub_of = np.array([it.subset for it in items], dtype=object)
    credit = {s: _mean_rows(weights, [it.credit for it in items], sub_of == s) for s in subsets}
    strict = {s: _mean_rows(weights, [it.strict for it in items], sub_of == s) for s in subsets}
    bok = {s: _mean_rows(weights, [it.bok for it in items], sub_of == s) for s in subsets}
    cell_keys = sorted({(it.subset, it.cell) for it in items if it.cell is not None and it.credit is not None})
    cell_stats = {key: _mean_rows(weights, [it.credit for it in items],
                                  np.array([(it.subset, it.cell) == key for it in items])) for key in cell_keys}
    ties_idx = [i for i, it in enumerate(items) if protocol.uses_items]
    auc = protocol.headline_metric == "roc_auc"
    if auc:
        roc = [i for i, it in enumerate(items) if it.score is not None and it.label is not None]
        sc = np.array([items[i].score for i in roc], dtype=float)
        lb = np.array([items[i].label for i in roc], dtype=int)
    heads, offs = np.full(b, np.nan), np.full(b, np.nan)
    for r in range(b):
        def agg(s: str, a: SubsetAggregate) -> SubsetAggregate:
            (c, n), (st, ns), (bk, nb) = credit[s], strict[s], bok[s]
            def val(v):
                return None if math.isnan(v) else float(v)
            return replace(a, credit=val(c[r]) if a.credit is not None else None, n_items=int(n[r]),
                           strict=val(st[r]) if a.strict is not None else None, n_strict=int(ns[r]),
                           bok=val(bk[r]) if a.bok is not None else None, n_bok=int(nb[r]))

        raggs = [agg(s, a) for s, a in subsets.items()]
        rcells: dict[str, dict[tuple[int, int], MatrixCell]] = {}
        for (subset, key), (v, n) in cell_stats.items():
            if n[r] > 0:
                rcells.setdefault(subset, {})[key] = replace(cells[subset][key], credit=float(v[r]), n=int(n[r]))
        ritems = [it for i in ties_idx for it in [items[i]] * int(weights[r, i])]
        rows, headline = protocol.summarize(raggs, rcells, ritems)
        if auc:
            headline = 100.0 * weighted_auc(sc, lb, weights[r, roc].astype(float)) if roc else None
        heads[r] = np.nan if headline is None else headline
        if protocol.official == STRICT:
            strict_all = [v for subset, metric, v, _ in rows if subset == "all" and metric == STRICT]
            offs[r] = strict_all[0] if strict_all else np.nan
        elif protocol.official == HEADLINE:
            offs[r] = heads[r]
    if protocol.official == TWO_GAMES and two_game_credit is not None:
        use = ~np.isnan(two_game_credit)
        den = weights[:, use].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            offs = np.where(den > 0, 100.0 * (weights[:, use] @ two_game_credit[use]) / den, np.nan)
    return Replicates(heads, offs if protocol.official else None)


def item_weights(items: Sequence[ItemCredit], clusters: Sequence[str], draws: np.ndarray) -> np.ndarray:
    index = {c: i for i, c in enumerate(clusters)}
    return draws[:, [index[it.cluster] for it in items]] if items else np.zeros((draws.shape[0], 0), dtype=int)


def benchmark_clusters(data: EvalData) -> dict[str, list[str]]:
    """Every benchmark's clusters, in a fixed order (the union over its groups)."""
    out: dict[str, set[str]] = {}
    for it in data.items:
        out.setdefault(it.source, set()).add(it.cluster)
    return {b: sorted(c) for b, c in out.items()}
