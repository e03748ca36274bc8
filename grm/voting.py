"""Inference-time scaling: voting over k sampled judgments (paper Eq. 14) and meta-RM-guided voting.

Each sample's scores are already in the original response order (see ``grm.shuffling``). Parse failures
are left out of the vote and counted. Ties between responses are broken at random, reproducibly, with the
md5 rank of ``grm.seeds.tie_rank`` (the SQL in ``grm.evaluation.sql`` uses the same expression).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from grm.seeds import tie_rank


@dataclass(frozen=True)
class Vote:
    totals: tuple[int, ...] | None  # S*_i, summed over the samples used; None when no sample parsed
    best: int | None  # argmax with the seeded tie-break; None when no sample parsed
    n_used: int
    n_failed: int  # samples that did not parse
    tied: bool  # the top total was shared
    n_discarded: int = 0  # parsed samples left out of the vote by the meta RM (metarm_vote)

    def label(self, threshold: float = 0.5) -> int | None:
        """Single-response binary judgments: 1 when the mean 0/1 score is above the threshold."""
        if self.totals is None or self.n_used == 0:
            return None
        return int(self.totals[0] / self.n_used > threshold)


def argmax_tiebreak(totals: Sequence[float], *, seed: int = 0, key: str = "") -> tuple[int, bool]:
    top = max(totals)
    tied = [i for i, t in enumerate(totals) if t == top]
    if len(tied) == 1:
        return tied[0], False
    return min(tied, key=lambda i: tie_rank(seed, key, i)), True


def vote(samples: Sequence[Sequence[int] | None], n: int, *, seed: int = 0, key: str = "") -> Vote:
    """Sum of pointwise scores over the samples (None = parse failure), then argmax."""
    valid = [s for s in samples if s is not None]
    failed = len(samples) - len(valid)
    if not valid:
        return Vote(None, None, 0, failed, False)
    for s in valid:
        if len(s) != n:
            raise ValueError(f"a sample has {len(s)} scores for {n} responses")
    totals = tuple(sum(s[i] for s in valid) for i in range(n))
    best, tied = argmax_tiebreak(totals, seed=seed, key=key)
    return Vote(totals, best, len(valid), failed, tied)


def metarm_select(meta_scores: Sequence[float | None], parsed: Sequence[bool], k_meta: int) -> list[int]:
    """Indices of the k_meta parsed samples with the highest meta scores (earlier sample wins a tie)."""
    cands = [i for i, ok in enumerate(parsed) if ok and meta_scores[i] is not None]
    cands.sort(key=lambda i: (-float(meta_scores[i]), i))
    return sorted(cands[:k_meta])


def metarm_vote(
    samples: Sequence[Sequence[int] | None],
    meta_scores: Sequence[float | None],
    n: int,
    k_meta: int,
    *,
    seed: int = 0,
    key: str = "",
) -> Vote:
    """Meta-RM-guided voting: keep the k_meta samples the meta RM rates highest, then vote. Samples that did not
    parse count in ``n_failed``; parsed samples the meta RM left out count apart, in ``n_discarded``."""
    if k_meta < 1:
        raise ValueError("k_meta must be at least 1")
    parsed = [s is not None for s in samples]
    keep = metarm_select(meta_scores, parsed, k_meta)
    v = vote([samples[i] for i in keep], n, seed=seed, key=key)
    return Vote(v.totals, v.best, v.n_used, len(samples) - sum(parsed), v.tied, n_discarded=sum(parsed) - v.n_used)


def tie_key(item_id: str, method_tag: str) -> str:
    """The ``key`` of ``tie_rank`` for one item under one voting method (e.g. ``voting@8``, ``metarm@8/4``).

    ``grm.evaluation.sql`` builds the same string in SQL (``item_id || ':' || tag``), so both break ties alike.
    """
    return f"{item_id}:{method_tag}"


def method_tag(method: str, k: int | None = None, k_meta: int | None = None) -> str:
    """``greedy``, ``voting@k``, ``metarm@k/k_meta``, or the method name alone (baselines)."""
    if method == "voting":
        return f"voting@{k}"
    if method == "metarm":
        return f"metarm@{k}/{k_meta}"
    return method


def binary_label(v: Vote, *, seed: int = 0, key: str = "") -> int | None:
    """Single-response 0/1 judgments: the majority label of the samples; an even split is broken with the
    same seeded rank as response ties (votes for label 0 at index 0, for label 1 at index 1)."""
    if v.totals is None or v.n_used == 0:
        return None
    ones = v.totals[0]
    return argmax_tiebreak((v.n_used - ones, ones), seed=seed, key=key)[0]


def default_k_meta(k: int) -> int:
    """The paper's default: half of the samples (at least one)."""
    return max(1, k // 2)
