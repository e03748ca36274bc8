"""The votes and per-item credit in DuckDB: greedy, voting@k and metaRM@k per item, scored under each
benchmark's tie / failure rules, then aggregated per subset, plus the bias reports (docs/design.md).

The vote is the SQL twin of ``grm.voting``: the first k samples (``sample_idx < k``), parse failures left
out, scores summed per response, argmax with the seeded tie-break ``md5('{seed}:{item_id}:{tag}:{idx}')``
(``grm.seeds.tie_rank`` with ``grm.voting.tie_key``); metaRM@k keeps the k_meta parsed samples with the
highest ``meta_score`` (earlier ``sample_idx`` wins a tie) before voting. A test cross-checks both.

Every function takes an open DuckDB connection that has ``judgments`` and ``items`` views (the caller gets
it from ``storage.sql.connect``), so this package never opens the store itself. One evaluation per
connection: the intermediate temp tables are created once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from grm.evaluation.aggregates import EvalData, GroupSelection, ItemCredit, MatrixCell, RocInput, SubsetAggregate, TwoGames
from grm.evaluation.benchmarks import RM_BENCH, RM_BENCH_STYLES
from grm.evaluation.methods import Method
from grm.evaluation.protocols import PROTOCOLS, Protocol, benchmark_of, report_subset
from grm.sampling_plan import SKIPPED

if TYPE_CHECKING:  # only for annotations: the connection comes from the caller
    from duckdb import DuckDBPyConnection

NO_K_META = 0  # internal stand-in for NULL k_meta, so that USING joins match (NULL never equals NULL)
NO_NAME = "(none)"  # reported for items without a source or subset
LENGTH_MODEL = "length"
LENGTH_METHOD = "baseline:length"


_SELECT = """
CREATE TEMP TABLE sel AS
WITH mk AS (
    SELECT model, max(sample_idx) + 1 AS k_avail, count(meta_score) AS n_meta
    FROM judgments WHERE decoding = 'sample' GROUP BY model
),
s AS (
    SELECT j.model, j.item_id, j.sample_idx, j.scores, j.meta_score, m.method, m.k, m.k_meta, m.tag
    FROM judgments j
    JOIN mk USING (model)
    JOIN methods m ON m.method = 'metarm' AND m.k <= mk.k_avail AND j.sample_idx < m.k AND mk.n_meta > 0
    WHERE j.decoding = 'sample'
    UNION ALL
    SELECT j.model, j.item_id, j.sample_idx, j.scores, j.meta_score, m.method, m.k, m.k_meta, m.tag
    FROM judgments j JOIN methods m ON m.method = 'greedy'
    WHERE j.decoding = 'greedy' AND j.sample_idx = 0  -- sample_idx 1: JudgeBench's second game (_TWO_GAMES)
),
v AS (  -- a sample is usable when it parsed into one score per response
    SELECT s.*, (s.scores IS NOT NULL AND len(s.scores) = len(i.responses)) AS usable,
           (s.scores IS NOT NULL AND len(s.scores) <> len(i.responses)) AS wrong_length
    FROM s JOIN items i USING (item_id)
)
SELECT *,
    CASE WHEN method = 'metarm' THEN
        usable AND meta_score IS NOT NULL AND row_number() OVER (
            PARTITION BY model, item_id, method, k, k_meta
            ORDER BY (usable AND meta_score IS NOT NULL) DESC, meta_score DESC, sample_idx) <= k_meta
    ELSE usable END AS kept
FROM v
"""

# The argmax with the seeded tie-break (grm.voting): md5 only where responses tie.
_PICK = """CASE WHEN len({t}.top_idx) = 1 THEN {t}.top_idx[1]
            ELSE list_sort(list_transform({t}.top_idx,
                 lambda i: {{'h': md5(concat($seed, ':', {i}.item_id, ':', {i}.tag, ':', i)), 'i': i}}))[1].i END"""

_TOP = """
    SELECT *, list_filter(range(len(totals)), lambda i: totals[i + 1] = top) AS top_idx
    FROM (SELECT {keys}, list(total ORDER BY idx) AS totals, max(total) AS top FROM {src} GROUP BY ALL)
"""

# voting@k for every k at once: running sums over sample_idx per (model, item, response), a parse failure
# adding 0 to every response (the same as leaving it out of the sum). voting@k reads the running sums at the
# row of sample k-1, so the sums cost one pass over the samples instead of one per k. An item missing one of
# its first k samples gets no voting@k (counted in EvalData.skipped).
_PREFIX = """
CREATE TEMP TABLE vprefix AS
WITH u AS (
    SELECT j.model, j.item_id, j.sample_idx, len(i.responses) AS n_resp,
           (j.scores IS NOT NULL AND len(j.scores) = len(i.responses)) AS usable, j.scores
    FROM judgments j JOIN items i USING (item_id)
    WHERE j.decoding = 'sample'
),
w AS (
    SELECT model, item_id, sample_idx, n_resp, {sums},
           sum(usable::INT) OVER w AS n_parsed, count(*) OVER w AS n_samples
    FROM u
    WINDOW w AS (PARTITION BY model, item_id ORDER BY sample_idx ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
SELECT model, item_id, sample_idx, n_parsed, n_samples, [{cols}][1:n_resp] AS totals FROM w
"""


def _prefix_sql(con: DuckDBPyConnection) -> str:
    """_PREFIX with one running-sum column per response position (as many as the widest item has)."""
    width = con.execute("SELECT coalesce(max(len(responses)), 1) FROM items").fetchone()[0]
    sums = ", ".join(f"sum(CASE WHEN usable THEN scores[{p}] ELSE 0 END) OVER w AS t{p}" for p in range(1, width + 1))
    return _PREFIX.format(sums=sums, cols=", ".join(f"t{p}" for p in range(1, width + 1)))


_VOTING = """
CREATE TEMP TABLE vk AS
WITH mk AS (SELECT model, max(sample_idx) + 1 AS k_avail FROM judgments WHERE decoding = 'sample' GROUP BY model)
SELECT p.model, p.item_id, 'voting' AS method, m.k, {no_k_meta} AS k_meta, m.tag, p.totals, p.n_parsed, p.n_samples
FROM vprefix p JOIN mk USING (model)
JOIN methods m ON m.method = 'voting' AND m.k <= mk.k_avail AND p.sample_idx = m.k - 1
WHERE p.n_samples = m.k  -- samples 0..k-1 all present (judge writes a row for every planned sample)
"""

# Per item: summed scores per response (the length baseline sums response lengths instead).
_TOTALS = """
CREATE TEMP TABLE tot AS
SELECT model, item_id, method, k, k_meta, tag, idx, sum(s)::BIGINT AS total
FROM (
    SELECT model, item_id, method, k, k_meta, tag, unnest(scores) AS s, unnest(range(len(scores))) AS idx
    FROM sel WHERE kept
    UNION ALL
    SELECT model, item_id, method, k, k_meta, tag, unnest(totals), unnest(range(len(totals))) FROM vk WHERE n_parsed > 0
    UNION ALL
    SELECT '{length_model}', item_id, '{length_method}', 0, 0, '{length_method}',
           unnest([length(r) for r in responses]), unnest(range(len(responses)))
    FROM items WHERE split = 'eval' AND len(responses) >= 2
)
GROUP BY ALL
"""

_VOTES = """
CREATE TEMP TABLE votes AS
WITH cnt AS (
    SELECT model, item_id, method, k, k_meta, tag, count(*) AS n_samples,
           count(*) FILTER (WHERE usable) AS n_parsed, count(*) FILTER (WHERE kept) AS n_used
    FROM sel GROUP BY ALL
    UNION ALL
    SELECT model, item_id, method, k, k_meta, tag, n_samples, n_parsed, n_parsed FROM vk
    UNION ALL
    SELECT '{length_model}', item_id, '{length_method}', 0, 0, '{length_method}', 0, 0, 1
    FROM items WHERE split = 'eval' AND len(responses) >= 2
),
pk AS ({top})
SELECT c.*, pk.totals,
       {pick} AS picked,
       len(pk.top_idx) AS n_top, pk.top_idx
FROM cnt c
LEFT JOIN pk USING (model, item_id, method, k, k_meta)
"""

# Per item credit under its benchmark's tie / failure rules (protocols.PROTOCOLS). From here on `source` holds
# the benchmark (protocols.benchmark_of) and `subset` the reported subset.
_SCORED = """
CREATE TEMP TABLE scored AS
WITH x AS (
    SELECT v.*, b.benchmark AS source, b.report_subset AS subset, i.label_kind, i.best, i.ratings, i.meta,
           len(i.responses) AS n_resp, md5(CAST(i.conversation AS VARCHAR)) AS conv_key,
           coalesce(p.tie, 'random') AS tie, coalesce(p.failure, 'miss') AS failure,
           -- every correct response where an item has several (RewardBench 2's Ties), else just the best
           coalesce(TRY_CAST(json_extract(i.meta, '$.correct') AS INTEGER[]), [i.best]) AS correct_set,
           CASE WHEN v.n_used > 0 AND len(i.responses) = 1 THEN
               CASE WHEN 2 * v.totals[1] > v.n_used THEN 1
                    WHEN 2 * v.totals[1] < v.n_used THEN 0
                    WHEN md5(concat($seed, ':', v.item_id, ':', v.tag, ':', 0))
                         < md5(concat($seed, ':', v.item_id, ':', v.tag, ':', 1)) THEN 0
                    ELSE 1 END
           END AS bin_label
    FROM votes v JOIN items i USING (item_id)
    JOIN bench_map b ON b.source IS NOT DISTINCT FROM i.source AND b.format IS NOT DISTINCT FROM i.format
    AND b.subset IS NOT DISTINCT FROM i.subset
    LEFT JOIN protocols p ON p.source = b.benchmark
)
SELECT *,
    CASE
        WHEN label_kind = 'best' AND n_resp >= 2 AND best >= 0 AND best < n_resp THEN
            CASE WHEN picked IS NULL THEN (CASE WHEN failure = 'chance' THEN len(correct_set) / n_resp ELSE 0.0 END)
                 WHEN n_top > 1 AND tie = 'chance' THEN len(list_intersect(top_idx, correct_set)) / n_top
                 WHEN n_top > 1 AND tie = 'miss' THEN 0.0
                 ELSE list_contains(correct_set, picked)::DOUBLE END
        WHEN label_kind = 'rating' AND n_resp = 1 AND $binary THEN
            CASE WHEN bin_label IS NULL THEN 0.0 ELSE (bin_label = (ratings[1] > 0.5)::INT)::DOUBLE END
    END AS credit,
    CASE WHEN label_kind = 'best' AND n_resp >= 2 AND best >= 0 AND best < n_resp THEN (picked IS NOT NULL AND n_top = 1 AND list_contains(correct_set, picked))::DOUBLE END AS strict,
    CASE WHEN n_resp >= 2 AND len(ratings) = n_resp AND list_bool_and([r IN (0.0, 1.0) for r in ratings]) THEN
        CASE WHEN picked IS NOT NULL THEN ratings[picked + 1]
             WHEN failure = 'chance' THEN list_avg(ratings) ELSE 0.0 END
    END AS bok
FROM x
"""

# Every scored item, for the bootstrap intervals and the per-item protocols (RewardBench 2's Ties formula).
_ITEMS = """
SELECT model, method, k, k_meta, source, subset, item_id,
       CASE WHEN json_extract_string(meta, '$.rb2_id') LIKE '%:%'  -- RB2 Ties: 'ref:<pid>' and 'tied:<pid>'
            THEN 'rb2:' || split_part(json_extract_string(meta, '$.rb2_id'), ':', 2) ELSE conv_key END AS cluster,
       credit, strict, bok,
       json_extract_string(meta, '$.chosen_style') AS cs, json_extract_string(meta, '$.rejected_style') AS rs,
       CASE WHEN label_kind = 'rating' AND n_resp = 1 AND n_used > 0 AND len(ratings) >= 1 THEN totals[1] / n_used END AS score,
       CASE WHEN label_kind = 'rating' AND n_resp = 1 AND len(ratings) >= 1 THEN (ratings[1] > 0.5)::INT END AS label,
       totals, meta
FROM scored ORDER BY ALL
"""

# JudgeBench's two games: the greedy judgment in the item's order (sample_idx 0) and in the reversed order
# (1), each +1 when it prefers the labelled response, -1 when it prefers the other, 0 for a tie or a failure.
_TWO_GAMES = """
SELECT j.model, b.benchmark AS source, b.report_subset AS subset, j.item_id, count(*) AS games,
       sum(CASE WHEN j.scores IS NULL OR len(j.scores) <> 2 THEN 0
                WHEN j.scores[i.best + 1] > j.scores[2 - i.best] THEN 1
                WHEN j.scores[i.best + 1] < j.scores[2 - i.best] THEN -1 ELSE 0 END) AS total
FROM judgments j JOIN items i USING (item_id)
JOIN bench_map b ON b.source IS NOT DISTINCT FROM i.source AND b.format IS NOT DISTINCT FROM i.format
    AND b.subset IS NOT DISTINCT FROM i.subset
WHERE j.decoding = 'greedy' AND b.benchmark IN ({two_game}) AND i.label_kind = 'best' AND len(i.responses) = 2
      AND i.best IN (0, 1)
GROUP BY ALL ORDER BY ALL
"""

# Chance: the expected accuracy of a uniformly random pick, per benchmark (eval items with a best response).
_CHANCE = """
SELECT b.benchmark, 100.0 * avg(1.0 / len(i.responses)) AS chance, count(*) AS n
FROM items i JOIN bench_map b ON b.source IS NOT DISTINCT FROM i.source AND b.format IS NOT DISTINCT FROM i.format
    AND b.subset IS NOT DISTINCT FROM i.subset
WHERE i.split = 'eval' AND i.label_kind = 'best' AND len(i.responses) >= 2
GROUP BY ALL
"""

_AGGREGATES = """
SELECT model, method, k, k_meta, source, subset,
       count(credit) AS n_items, avg(credit) AS credit,
       count(strict) AS n_strict, avg(strict) AS strict, max(n_resp) AS max_n,
       sum(n_samples) AS n_samples, sum(n_parsed) AS n_parsed,
       count(*) AS n_group, count(*) FILTER (WHERE picked IS NULL) AS n_failed_items,
       count(*) FILTER (WHERE n_top > 1) AS n_tied_items,
       count(bok) AS n_bok, avg(bok) AS bok
FROM scored GROUP BY ALL ORDER BY ALL
"""

_ROC = """
SELECT model, method, k, k_meta, source, subset, totals[1] / n_used AS score, (ratings[1] > 0.5)::INT AS label
FROM scored WHERE label_kind = 'rating' AND n_resp = 1 AND n_used > 0 AND len(ratings) >= 1
"""

_CELLS = """
SELECT model, method, k, k_meta, subset,
       json_extract_string(meta, '$.chosen_style') AS cs, json_extract_string(meta, '$.rejected_style') AS rs,
       avg(credit) AS credit, count(*) AS n
FROM scored WHERE source = $rm_bench AND credit IS NOT NULL
GROUP BY ALL
"""

# Best-of-N selection over single-response items that share a problem (meta.problem, else the same
# conversation): the judge picks the item with the highest voted mean score (ties: seeded md5 rank); the
# pick is right when that response is correct. base_rate = the correct share of a uniformly random pick.
_GROUPS = """
WITH g AS (
    SELECT *, coalesce(json_extract_string(meta, '$.problem'), conv_key) AS grp,
           CASE WHEN n_used > 0 THEN totals[1] / n_used END AS score
    FROM scored WHERE label_kind = 'rating' AND n_resp = 1 AND len(ratings) >= 1
),
r AS (
    SELECT *, count(*) OVER w AS size, avg((ratings[1] > 0.5)::INT) OVER w AS base,
           row_number() OVER (PARTITION BY model, method, k, k_meta, source, subset, grp
                              ORDER BY score DESC NULLS LAST, md5(concat($seed, ':', grp, ':', tag, ':', item_id))) AS rk
    FROM g
    WINDOW w AS (PARTITION BY model, method, k, k_meta, source, subset, grp)
)
SELECT model, method, k, k_meta, source, subset, count(*) AS n_groups,
       avg((ratings[1] > 0.5)::INT) AS picked_correct, avg(base) AS base_rate
FROM r WHERE rk = 1 AND size >= 2
GROUP BY ALL
"""

# Bias reports over every parsed judgment of a model (greedy and samples), items with a best label. The flip
# rate pairs samples of one decoding whose orders are exact reversals of each other.
_PER_SAMPLE = """
CREATE TEMP TABLE per_sample AS
SELECT j.model, j.item_id, j.decoding, j.sample_idx, j.permutation, b.benchmark AS source, b.report_subset AS subset,
       i.best,
       len(i.responses) AS n_resp,
       j.scores[i.best + 1] > list_max(list_filter(j.scores, lambda x, p: p <> i.best + 1)) AS correct,
       CASE WHEN len(list_filter(j.scores, lambda x: x = list_max(j.scores))) = 1
            THEN list_position(j.scores, list_max(j.scores)) - 1 ELSE -1 END AS decision,
       j.permutation[1] = i.best AS best_first,
       j.permutation[len(j.permutation)] = i.best AS best_last,
       length(i.responses[i.best + 1]) < list_min(list_filter([length(r) for r in i.responses], lambda x, p: p <> i.best + 1)) AS best_shorter,
       length(i.responses[i.best + 1]) > list_max(list_filter([length(r) for r in i.responses], lambda x, p: p <> i.best + 1)) AS best_longer
FROM judgments j JOIN items i USING (item_id)
JOIN bench_map b ON b.source IS NOT DISTINCT FROM i.source AND b.format IS NOT DISTINCT FROM i.format
    AND b.subset IS NOT DISTINCT FROM i.subset
WHERE i.label_kind = 'best' AND len(i.responses) >= 2 AND i.best >= 0 AND i.best < len(i.responses) AND j.scores IS NOT NULL
      AND len(j.scores) = len(i.responses) AND len(j.permutation) = len(i.responses)
"""

_BIAS = """
WITH flips AS (
    SELECT a.model, a.source, a.subset, count(*) AS n_pairs, count(*) FILTER (WHERE a.decision <> b.decision) AS n_flips
    FROM per_sample a JOIN per_sample b
      ON a.model = b.model AND a.item_id = b.item_id
     AND a.decoding = b.decoding AND a.sample_idx < b.sample_idx
     AND b.permutation = list_reverse(a.permutation)
    GROUP BY GROUPING SETS ((a.model, a.source, a.subset), (a.model, a.source))
),
acc AS (
    SELECT model, source, subset,
           count(*) FILTER (WHERE best_first) AS n_first, avg(correct::INT) FILTER (WHERE best_first) AS acc_first,
           count(*) FILTER (WHERE best_last) AS n_last, avg(correct::INT) FILTER (WHERE best_last) AS acc_last,
           count(*) FILTER (WHERE best_shorter) AS n_shorter, avg(correct::INT) FILTER (WHERE best_shorter) AS acc_shorter,
           count(*) FILTER (WHERE best_longer) AS n_longer, avg(correct::INT) FILTER (WHERE best_longer) AS acc_longer
    FROM per_sample
    GROUP BY GROUPING SETS ((model, source, subset), (model, source))
)
SELECT acc.*, flips.n_pairs, flips.n_flips
FROM acc LEFT JOIN flips
  ON acc.model = flips.model AND acc.source = flips.source AND acc.subset IS NOT DISTINCT FROM flips.subset
ORDER BY ALL
"""

# Judgment and item rows the evaluation cannot use, counted (never dropped silently): name -> count query.
# Eval prompts the backend did not sample (over the context budget) per model, decoding and benchmark: their
# judgments score as failures, so the count is reported beside the scores (results metric 'skipped_prompts').
_SKIPPED_PROMPTS = f"""
SELECT j.model, j.decoding, b.benchmark, max(j.sample_idx) + 1 AS k,
       count(DISTINCT j.item_id) FILTER (WHERE j.parse_status = '{SKIPPED}') AS n_skipped, count(DISTINCT j.item_id) AS n_items
FROM judgments j JOIN items i USING (item_id)
JOIN bench_map b ON b.source IS NOT DISTINCT FROM i.source AND b.format IS NOT DISTINCT FROM i.format
    AND b.subset IS NOT DISTINCT FROM i.subset
GROUP BY ALL ORDER BY ALL
"""

_SKIPPED = {
    "items_with_sample_gaps": "SELECT count(*) FROM (SELECT model, item_id FROM judgments WHERE decoding = 'sample' "
    "GROUP BY ALL HAVING count(DISTINCT sample_idx) <> max(sample_idx) + 1)",
    "wrong_score_count": "SELECT count(*) FROM judgments j JOIN items i USING (item_id) "
    "WHERE j.scores IS NOT NULL AND len(j.scores) <> len(i.responses)",
    "duplicate_judgments": "SELECT count(*) - count(DISTINCT (model, item_id, decoding, sample_idx)) FROM judgments",
    "unknown_decoding": "SELECT count(*) FROM judgments WHERE decoding IS NULL OR decoding NOT IN ('greedy', 'sample')",
    "items_with_invalid_label": "SELECT count(DISTINCT item_id) FROM scored WHERE (label_kind = 'best' AND (best IS NULL "
    "OR best < 0 OR best >= n_resp OR n_resp < 2)) OR (label_kind = 'rating' AND (ratings IS NULL OR len(ratings) = 0)) "
    "OR label_kind IS NULL OR label_kind NOT IN ('best', 'rating')",
    "judgments_without_item": "SELECT count(*) FROM judgments WHERE item_id NOT IN (SELECT item_id FROM items)",
}


def _style(v: str | None) -> int | None:
    if v is None:
        return None
    if v.isdigit() and int(v) < len(RM_BENCH_STYLES):
        return int(v)
    return RM_BENCH_STYLES.index(v) if v in RM_BENCH_STYLES else None


def _k_meta(v: int) -> int | None:
    return None if v == NO_K_META else v


def _k(method: str, v: int) -> int | None:
    return None if method.startswith("baseline:") else v


def _fetch(con: DuckDBPyConnection, sql: str, params: dict | None = None) -> list[dict]:
    cur = con.execute(sql, params or {})
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def evaluate_judgments(
    con: DuckDBPyConnection,
    methods: Sequence[Method],
    *,
    seed: int = 0,
    binary_single: bool = False,
    protocols: dict[str, Protocol] = PROTOCOLS,
) -> EvalData:
    """Everything over a connection that has ``judgments`` and ``items`` views (or tables)."""
    con.execute("CREATE OR REPLACE TEMP TABLE methods(method VARCHAR, k INTEGER, k_meta INTEGER, tag VARCHAR)")
    con.executemany(
        "INSERT INTO methods VALUES (?, ?, ?, ?)",
        [(m.method, m.k, NO_K_META if m.k_meta is None else m.k_meta, m.tag) for m in methods],
    )
    con.execute("CREATE OR REPLACE TEMP TABLE protocols(source VARCHAR, tie VARCHAR, failure VARCHAR)")
    con.executemany("INSERT INTO protocols VALUES (?, ?, ?)", [(s, p.tie, p.failure) for s, p in protocols.items()])
    # which benchmark protocol (and reported subset) each (source, format, subset) of the items falls under
    con.execute("CREATE OR REPLACE TEMP TABLE bench_map(source VARCHAR, format VARCHAR, subset VARCHAR, "
                "benchmark VARCHAR, report_subset VARCHAR)")
    groups = con.execute("SELECT DISTINCT source, format, subset FROM items").fetchall()
    con.executemany(
        "INSERT INTO bench_map VALUES (?, ?, ?, ?, ?)",
        [(src, fmt, sub, benchmark_of(src or NO_NAME, fmt), report_subset(benchmark_of(src or NO_NAME, fmt), fmt, sub or NO_NAME))
         for src, fmt, sub in groups],
    )
    fill = {"length_model": LENGTH_MODEL, "length_method": LENGTH_METHOD}
    con.execute(_SELECT)
    con.execute(_prefix_sql(con))
    con.execute(_VOTING.format(no_k_meta=NO_K_META))
    con.execute(_TOTALS.format(**fill))
    top = _TOP.format(keys="model, item_id, method, k, k_meta", src="tot")
    con.execute(_VOTES.format(**fill, top=top, pick=_PICK.format(t="pk", i="c")), {"seed": str(seed)})
    con.execute(_SCORED, {"seed": str(seed), "binary": binary_single})

    data = EvalData()
    data.skipped.update({name: con.execute(sql).fetchone()[0] for name, sql in _SKIPPED.items()})
    data.skipped_prompts = _fetch(con, _SKIPPED_PROMPTS)
    for r in _fetch(con, _AGGREGATES):
        data.aggregates.append(
            SubsetAggregate(
                model=r["model"], method=r["method"], k=_k(r["method"], r["k"]), k_meta=_k_meta(r["k_meta"]),
                source=r["source"], subset=r["subset"], n_items=r["n_items"], credit=r["credit"],
                n_strict=r["n_strict"], strict=r["strict"], max_n=r["max_n"], n_samples=int(r["n_samples"]),
                n_parsed=int(r["n_parsed"]), n_group=r["n_group"], n_failed_items=r["n_failed_items"], n_tied_items=r["n_tied_items"],
                n_bok=r["n_bok"], bok=r["bok"],
            )
        )
    for r in _fetch(con, _ROC):
        data.roc_inputs.append(
            RocInput(r["model"], r["method"], _k(r["method"], r["k"]), _k_meta(r["k_meta"]), r["source"], r["subset"],
                     float(r["score"]), int(r["label"]))
        )
    for r in _fetch(con, _GROUPS, {"seed": str(seed)}):
        data.groups.append(
            GroupSelection(r["model"], r["method"], _k(r["method"], r["k"]), _k_meta(r["k_meta"]), r["source"],
                           r["subset"], int(r["n_groups"]), float(r["picked_correct"]), float(r["base_rate"]))
        )
    bad_style = 0
    for r in _fetch(con, _CELLS, {"rm_bench": RM_BENCH}):
        cs, rs = _style(r["cs"]), _style(r["rs"])
        if cs is None or rs is None:
            bad_style += r["n"]
            continue
        data.cells.append(
            MatrixCell(r["model"], r["method"], _k(r["method"], r["k"]), _k_meta(r["k_meta"]), r["subset"], cs, rs,
                       float(r["credit"]), int(r["n"]))
        )
    data.skipped["rm_bench_without_styles"] = bad_style
    for r in _fetch(con, _ITEMS):
        cs, rs = _style(r["cs"]), _style(r["rs"])
        data.items.append(
            ItemCredit(r["model"], r["method"], _k(r["method"], r["k"]), _k_meta(r["k_meta"]), r["source"], r["subset"],
                       r["item_id"], r["cluster"], r["credit"], r["strict"], r["bok"],
                       (cs, rs) if cs is not None and rs is not None else None, r["score"], r["label"],
                       tuple(r["totals"]) if r["totals"] is not None else None, r["meta"])
        )
    two_game = [s for s, p in protocols.items() if p.two_games]
    if two_game:
        games = _fetch(con, _TWO_GAMES.format(two_game=", ".join(f"'{s}'" for s in two_game)))
        data.two_games = [TwoGames(r["model"], r["source"], r["subset"], r["item_id"], r["games"], int(r["total"]))
                          for r in games]
        data.skipped["pairs_without_both_games"] = sum(1 for g in data.two_games if g.games != 2)
    data.chance = {r["benchmark"]: (float(r["chance"]), int(r["n"])) for r in _fetch(con, _CHANCE)}
    con.execute(_PER_SAMPLE)
    data.bias_rows = _fetch(con, _BIAS)
    return data


def voting_accuracy(con: DuckDBPyConnection, ks: Sequence[int], *, seed: int = 0) -> dict[tuple[str, int], tuple[float, int]]:
    """voting@k accuracy (percent, items) per (model, k) for items with a best response: the same running-sum
    votes and tie-break as ``evaluate_judgments``, without the per-benchmark protocols and bias reports."""
    con.execute("CREATE OR REPLACE TEMP TABLE methods(method VARCHAR, k INTEGER, k_meta INTEGER, tag VARCHAR)")
    con.executemany("INSERT INTO methods VALUES (?, ?, ?, ?)",
                    [(m.method, m.k, NO_K_META, m.tag) for m in (Method("voting", k) for k in ks)])
    con.execute(_prefix_sql(con))
    con.execute(_VOTING.format(no_k_meta=NO_K_META))
    rows = con.execute(
        f"""WITH pk AS (SELECT *, list_filter(range(len(totals)), lambda i: totals[i + 1] = list_max(totals)) AS top_idx
                        FROM vk),
             v AS (SELECT model, item_id, k, CASE WHEN n_parsed > 0 THEN {_PICK.format(t="pk", i="pk")} END AS picked
                   FROM pk)
        SELECT v.model, v.k, 100.0 * avg(coalesce(v.picked = i.best, false)::INT), count(*)
        FROM v JOIN items i USING (item_id)
        WHERE i.label_kind = 'best' GROUP BY ALL""",
        {"seed": str(seed)},
    ).fetchall()
    return {(m, k): (acc, n) for m, k, acc, n in rows}


def item_votes(con: DuckDBPyConnection) -> list[dict]:
    """The per-item votes of the last ``evaluate_judgments`` (for inspection and the SQL-vs-Python cross-check)."""
    rows = _fetch(con, "SELECT model, item_id, method, k, k_meta, tag, n_used, n_samples, n_parsed, totals, picked, "
                       "n_top, bin_label, credit, strict FROM scored ORDER BY ALL")
    for r in rows:
        r["k_meta"] = _k_meta(r["k_meta"])
    return rows


def sample_budget(con: DuckDBPyConnection) -> int:
    """The largest k the judgments support (samples per item of the most-sampled model)."""
    v = con.execute("SELECT max(sample_idx) + 1 FROM judgments WHERE decoding = 'sample'").fetchone()[0]
    return int(v or 0)
