"""What the DuckDB evaluation (``grm.evaluation.sql``) hands to the Python scoring: per-subset aggregates,
ROC inputs, RM-Bench matrix cells, best-of-group selections, per-item credits (for the intervals and the
RewardBench 2 Ties formula) and JudgeBench's two games, gathered in ``EvalData``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scoring:
    """Who was scored how, on what: the (model, method, k, k_meta) group and the benchmark's subset (``source``
    is the benchmark). The rows below all start with these fields."""

    model: str
    method: str
    k: int | None
    k_meta: int | None
    source: str
    subset: str


@dataclass(frozen=True)
class SubsetAggregate(Scoring):
    """One (model, method, k, k_meta, source, subset) group; ``source`` is the benchmark."""

    n_items: int  # items with a best label (or binary single-response items)
    credit: float | None  # mean credit in [0, 1] under the source's tie/failure rules (None: no such item)
    n_strict: int  # items with n >= 2 and a best label
    strict: float | None  # best strictly above every other response
    max_n: int  # most responses of an item in this group
    n_samples: int
    n_parsed: int
    n_group: int  # items in the group
    n_failed_items: int  # items where no sample parsed
    n_tied_items: int  # items whose top total was shared
    n_bok: int = 0  # items with every response's correctness in ratings
    bok: float | None = None  # mean correctness of the picked response


@dataclass(frozen=True)
class RocInput(Scoring):
    score: float
    label: int


@dataclass(frozen=True)
class MatrixCell:
    """RM-Bench: accuracy of chosen style i vs rejected style j in one domain subset."""

    model: str
    method: str
    k: int | None
    k_meta: int | None
    subset: str
    chosen_style: int
    rejected_style: int
    credit: float
    n: int


@dataclass(frozen=True)
class GroupSelection(Scoring):
    """Best-of-N over single-response items sharing a problem: how often the judge's pick is correct."""

    n_groups: int
    picked_correct: float  # share of groups where the highest-scored response is correct
    base_rate: float  # share a uniformly random pick would get


@dataclass(frozen=True)
class ItemCredit(Scoring):
    """One item's outcome under one (model, method, k, k_meta): what the bootstrap resamples."""

    item_id: str
    cluster: str  # items sharing a prompt are resampled together (RM-Bench's 9 style pairs, RB2's ref/tied)
    credit: float | None
    strict: float | None
    bok: float | None
    cell: tuple[int, int] | None  # RM-Bench (chosen style, rejected style)
    score: float | None  # single-response items: the voted mean score (ROC-AUC)
    label: int | None
    totals: tuple[float, ...] | None  # voted score per response (original order)
    meta: str | None


@dataclass(frozen=True)
class TwoGames:
    """JudgeBench's protocol: one pair judged greedily in both orders; ``total`` = sum of the games' signs
    (+1 agrees with the label, -1 with its reverse, 0 tie or failure)."""

    model: str
    source: str
    subset: str
    item_id: str
    games: int
    total: int


@dataclass
class EvalData:
    aggregates: list[SubsetAggregate] = field(default_factory=list)
    roc_inputs: list[RocInput] = field(default_factory=list)
    cells: list[MatrixCell] = field(default_factory=list)
    groups: list[GroupSelection] = field(default_factory=list)
    bias_rows: list[dict] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # what was left out, and how many (e.g. wrong score counts)
    skipped_prompts: list[dict] = field(default_factory=list)  # per model, decoding, benchmark: prompts not sampled
    items: list[ItemCredit] = field(default_factory=list)
    two_games: list[TwoGames] = field(default_factory=list)
    chance: dict[str, tuple[float, int]] = field(default_factory=dict)  # benchmark -> (chance accuracy %, items)
