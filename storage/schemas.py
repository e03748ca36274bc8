"""pyarrow schemas of every table in the store (docs/design.md, "Storage"). Bump SCHEMA_VERSION on any change."""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 2

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])

ITEMS = pa.schema(
    [
        ("item_id", pa.string()),
        ("source", pa.string()),
        ("format", pa.string()),
        ("split", pa.string()),  # train | eval
        ("subset", pa.string()),
        ("conversation", pa.list_(MESSAGE)),
        ("responses", pa.list_(pa.string())),
        ("label_kind", pa.string()),  # best | rating
        ("best", pa.int32()),  # 0-based index of the best response (label_kind best)
        ("ratings", pa.list_(pa.float64())),  # per-response ground truth where known; rating items: ratings[0]
        ("meta", pa.string()),  # JSON: source-specific fields (styles, preference strength, flags)
    ]
)

QUARANTINE = pa.schema(
    [
        ("source", pa.string()),
        ("format", pa.string()),
        ("row_ref", pa.string()),  # file:line or file#index
        ("reason", pa.string()),
        ("raw", pa.string()),  # the row as read (undecodable bytes as \\x escapes)
    ]
)

# Sources registered by `grm data import`: one row per source, read by `curate` beside the config's sources.
IMPORTS = pa.schema(
    [
        ("name", pa.string()),
        ("format", pa.string()),
        ("split", pa.string()),
        ("paths", pa.list_(pa.string())),  # absolute paths, or HF dataset ids
        ("hf_split", pa.string()),
        ("max_chars", pa.int64()),  # null: data.max_chars
        ("registered_at", pa.string()),
    ]
)

# The math data step (stage math_samples): one row per math problem read, with the solutions a policy model
# sampled for it, each judged against the ground truth; or the error that kept it from being sampled. curate
# pairs a correct with an incorrect solution of each problem (format sampled_solutions).
SAMPLED_SOLUTION = pa.struct(
    [
        ("sample_idx", pa.int32()),
        ("seed", pa.int64()),
        ("text", pa.string()),
        ("answer", pa.string()),  # the final answer found (\boxed{} or '#### n'); null when none
        ("correct", pa.bool_()),  # the answer equals the ground truth (math-verify)
        ("finish_reason", pa.string()),  # stop | length
    ]
)

MATH_SAMPLES = pa.schema(
    [
        ("problem_id", pa.string()),  # the problem's item id (source + content)
        ("source", pa.string()),  # the data.math_samples source it was read from
        ("split", pa.string()),
        ("subset", pa.string()),
        ("row_ref", pa.string()),  # where an unreadable problem was (file:line); null otherwise
        ("conversation", pa.list_(MESSAGE)),  # the problem as the user's turn (without the sampling instruction)
        ("reference_answer", pa.string()),
        ("model", pa.string()),  # the sampler, as configured
        ("solutions", pa.list_(SAMPLED_SOLUTION)),
        ("error", pa.string()),  # why the problem was not sampled ('code: detail', its quarantine reason); null if it was
        ("raw", pa.string()),  # the problem row as read, for an unreadable problem
        ("meta", pa.string()),  # JSON: the problem item's meta (level, ...)
    ]
)

# One row per sampled trajectory of rejective fine-tuning.
RFT_SAMPLES = pa.schema(
    [
        ("item_id", pa.string()),
        ("sample_idx", pa.int32()),
        ("hinted", pa.bool_()),
        ("seed", pa.int64()),
        ("permutation", pa.list_(pa.int32())),
        ("prompt", pa.string()),
        ("completion", pa.string()),
        ("scores", pa.list_(pa.int32())),  # original response order; null on parse failure
        ("parse_status", pa.string()),
        ("principles", pa.string()),
        ("critique", pa.string()),
        ("correct", pa.bool_()),
        ("accepted", pa.bool_()),
        ("reject_reason", pa.string()),
        ("source", pa.string()),
        ("n_responses", pa.int32()),
    ]
)

RL_LOG = pa.schema(
    [
        ("step", pa.int64()),
        ("reward_mean", pa.float64()),
        ("reward_std", pa.float64()),
        ("kl", pa.float64()),
        ("loss", pa.float64()),
        ("parse_rate", pa.float64()),
        ("learning_rate", pa.float64()),
        ("completion_length", pa.float64()),
        ("seconds", pa.float64()),
    ]
)

WARMUP_EXAMPLES = pa.schema(  # the format warm-up's SFT examples (grm/warmup.py)
    [
        ("example_id", pa.string()),
        ("kind", pa.string()),  # single | pairwise | listwise
        ("refs", pa.list_(pa.string())),  # file:line of each critique shown, in the order shown
        ("n_responses", pa.int32()),
        ("scores", pa.list_(pa.int32())),  # the judge's ratings, in the order shown: the target's box
        ("prompt", pa.string()),
        ("completion", pa.string()),
    ]
)

METARM_DATA = pa.schema(
    [
        ("item_id", pa.string()),
        ("sample_idx", pa.int32()),
        ("text", pa.string()),  # the meta-RM input (template applied, chat template not yet; \x1e before the GRM output)
        ("label", pa.int8()),  # 1 = the trajectory's scores are correct by Eq. 10
        ("origin", pa.string()),  # rft | grm
        ("split", pa.string()),  # train | heldout
    ]
)

JUDGMENTS = pa.schema(
    [
        ("model", pa.string()),  # base | rft | grm | a baseline name
        ("item_id", pa.string()),
        ("decoding", pa.string()),  # greedy | sample
        ("sample_idx", pa.int32()),
        ("seed", pa.int64()),
        ("permutation", pa.list_(pa.int32())),
        ("prompt", pa.string()),
        ("completion", pa.string()),
        ("scores", pa.list_(pa.int32())),  # original response order; null on parse failure
        ("parse_status", pa.string()),
        ("principles", pa.string()),
        ("critique", pa.string()),
        ("meta_score", pa.float64()),
        ("meta_truncated", pa.bool_()),  # the meta RM's input was cut to metarm.max_length; null without a meta score
    ]
)

RESULTS = pa.schema(
    [
        ("benchmark", pa.string()),
        ("subset", pa.string()),
        ("method", pa.string()),  # greedy | voting | metarm | baseline:<name> | bias
        ("k", pa.int32()),
        ("k_meta", pa.int32()),
        ("metric", pa.string()),
        ("value", pa.float64()),  # a percentage
        ("n", pa.int64()),
        ("model", pa.string()),
        ("ci_low", pa.float64()),  # 95% interval (grm.evaluation.intervals); null where none applies
        ("ci_high", pa.float64()),
    ]
)

RUNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("stage", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("seconds", pa.float64()),
        ("cache_hit", pa.bool_()),
        ("rows_in", pa.int64()),
        ("rows_out", pa.int64()),
        ("artifact", pa.string()),
        ("cache_key", pa.string()),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "items": ITEMS,
    "quarantine": QUARANTINE,
    "imports": IMPORTS,
    "math_samples": MATH_SAMPLES,
    "warmup_examples": WARMUP_EXAMPLES,
    "rft_samples": RFT_SAMPLES,
    "rl_log": RL_LOG,
    "metarm_data": METARM_DATA,
    "judgments": JUDGMENTS,
    "results": RESULTS,
    "runs": RUNS,
}

def schema_for(table: str) -> pa.Schema:
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLES)}") from None
