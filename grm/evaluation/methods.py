"""Which voting methods are evaluated: greedy, voting@k and metaRM@k, over a grid of k and k_meta."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from grm.voting import default_k_meta, method_tag


@dataclass(frozen=True)
class Method:
    method: str  # greedy | voting | metarm
    k: int
    k_meta: int | None = None

    @property
    def tag(self) -> str:
        return method_tag(self.method, self.k, self.k_meta)


def methods_for(k_values: Sequence[int], k_metas: dict[int, Sequence[int]]) -> list[Method]:
    out = [Method("greedy", 1)]
    for k in k_values:
        out.append(Method("voting", k))
        out += [Method("metarm", k, m) for m in k_metas.get(k, ())]
    return out


def k_grid(k_max: int, k_values: Sequence[int] | None = None) -> list[int]:
    """1, 2, 4, ... up to k_max (and k_max itself), or the configured values that do not exceed k_max."""
    if k_values:
        return sorted({k for k in k_values if 1 <= k <= k_max})
    ks, k = [], 1
    while k <= k_max:
        ks.append(k)
        k *= 2
    if ks[-1] != k_max:
        ks.append(k_max)
    return ks


def k_meta_grid(k: int, alternatives: Sequence[int] = ()) -> list[int]:
    """k/2 (the paper's default) plus the configured alternatives that fit within k."""
    return sorted({default_k_meta(k), *(m for m in alternatives if 1 <= m <= k)})
