"""Fuzzing bad input: the GRM output parser, every dataset format adapter (through the importer), the source
file readers and config files, with hypothesis. Each campaign returns its counts and raises on the first
broken promise:

- parser: ``parse_judgment`` never raises; its status is one of PARSE_STATUSES; scores exactly when ``ok``,
  n of them, in range.
- formats: every row is imported, quarantined with a known reason code, or counted as a duplicate
  (read = imported + quarantined + duplicates, one quarantine row per quarantined row); an adapter raises only
  RowError (the importer would keep any other exception as "unexpected", which counts as a failure here).
- readers: random lines and documents in .jsonl / .json files: the same accounting, or one SourceReadError
  naming the file.
- config: malformed YAML, non-UTF-8 bytes and wrong values give ConfigError lines each naming the file and
  (for values) the field; nothing else escapes.

Rows are mutations of one valid row per format (tests/format_seeds.py: keys deleted, values replaced by
anything JSON holds or by the adapter's own string constants, lists cut or grown, types swapped), so that they
reach every check of the adapter, plus rows built from scratch over the adapter's field names.

With ``neighbours`` (the long campaign), each drawn input also brings its systematic neighbourhood, cheap to
test and where bugs sit: a GRM output cut at many points, a row with each key dropped and each key set to each
of a palette of bad values, a file with each line also cut short, a config value put at other fields too.

Used by tests/test_input_fuzz.py (a few hundred inputs per target) and bench/input_fuzz.py (100,000+).
"""

from __future__ import annotations

import copy
import json
import tempfile
import types
from collections import Counter
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from grm.config import ConfigError, load_config
from grm.formats import base
from grm.formats.importer import import_records, import_source
from grm.formats.readers import Record, SourceReadError
from grm.formats.registry import FORMATS
from grm.parsing import OK, PARSE_STATUSES, parse_judgment
from tests.format_seeds import SEEDS

ROOT = Path(__file__).resolve().parents[1]
REASON_CODES = {v for k, v in vars(base).items() if k.isupper() and isinstance(v, str) and k not in ("ROLES",)}


class BrokenPromise(AssertionError):
    pass


def _settings(examples: int, rng_seed: int):
    def wrap(fn):
        return settings(max_examples=examples, deadline=None, database=None,
                        suppress_health_check=list(HealthCheck))(seed(rng_seed)(fn))
    return wrap


# ---- the parser ----------------------------------------------------------------------------------------
PIECES = ["\\boxed{", "}", "{", ",", " ", "\n", "Scores:", "Final Scores:", "Output:", "Analysis:", "**Analysis**:",
          "Specific Criteria:", "### Output:", "Score: ", "-", "+", "10", "1", "0", "7", "11", "3.5", "x", "\\boxed{}"]
GRM_TEXT = st.lists(st.sampled_from(PIECES) | st.text(max_size=8) | st.integers(-20, 30).map(str), max_size=40).map("".join)


def cuts(text, points: int = 24) -> list:
    """The text and its prefixes at up to ``points`` places (an output or a file cut off anywhere)."""
    step = max(1, len(text) // points)
    return [text[:i] for i in range(0, len(text), step)] + [text]


def parser_campaign(examples: int, rng_seed: int = 0, neighbours: bool = False) -> Counter:
    counts: Counter = Counter()

    @_settings(examples, rng_seed)
    @given(text=GRM_TEXT | st.text(max_size=300), n=st.integers(1, 10), binary=st.booleans())
    def one(text, n, binary):
        for t in cuts(text) if neighbours else [text]:
            check(t, n, binary)

    def check(text, n, binary):
        lo, hi = (0, 1) if binary else (1, 10)
        p = parse_judgment(text, n, (lo, hi))
        if p.status not in PARSE_STATUSES or (p.status == OK) != (p.scores is not None):
            raise BrokenPromise(f"status {p.status} with scores {p.scores} for {text!r}")
        if p.ok and (len(p.scores) != n or not all(lo <= s <= hi for s in p.scores)):
            raise BrokenPromise(f"ok with {p.scores} for n={n}, range {lo}..{hi}: {text!r}")
        if not isinstance(p.principles, str) or not isinstance(p.critique, str):
            raise BrokenPromise(f"sections {p.principles!r}, {p.critique!r}")
        counts[p.status] += 1

    one()
    return counts


# ---- format adapters -----------------------------------------------------------------------------------
def _constants(fn, seen: set) -> set[str]:
    """String constants of an adapter and of the grm.formats functions it calls (field names, label values)."""
    if fn in seen or not isinstance(fn, types.FunctionType):
        return set()
    seen.add(fn)
    out: set[str] = set()
    codes = [fn.__code__]
    while codes:
        code = codes.pop()
        consts = list(code.co_consts)
        while consts:
            c = consts.pop()
            if isinstance(c, str) and 0 < len(c) <= 30 and c == c.strip():
                out.add(c)
            elif isinstance(c, (tuple, frozenset)):  # the keys of a literal dict, the choices of an `in`
                consts.extend(c)
            elif isinstance(c, types.CodeType):
                codes.append(c)
        for name in code.co_names:
            callee = fn.__globals__.get(name)
            if isinstance(callee, types.FunctionType) and callee.__module__.startswith("grm.formats"):
                out |= _constants(callee, seen)
    return out


def format_vocabulary(name: str) -> list[str]:
    return sorted(_constants(FORMATS[name].convert, set()) | {"role", "content", "user", "assistant", "system"})


def row_strategy(vocab: list[str]):
    """Rows over an adapter's own field names, mostly of plausible types (text, small ints, lists of text,
    chat messages) so that many get deep into the adapter, the rest anything JSON can hold."""
    words = st.sampled_from(vocab)
    good_text = words | st.text(min_size=1, max_size=30)
    texts = good_text | st.just("") | st.just("   ")
    scalars = st.none() | st.booleans() | st.integers(-3, 12) | st.integers() | st.floats() | texts
    message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]) | texts,
                                     "content": good_text | scalars})
    plausible = (good_text | st.integers(0, 3) | st.lists(good_text, min_size=1, max_size=5)
                 | st.lists(message, min_size=1, max_size=4))
    values = st.recursive(plausible | scalars, lambda inner: st.lists(inner, max_size=5)
                          | st.dictionaries(words, inner, max_size=6), max_leaves=12)
    return (st.fixed_dictionaries({}, optional={k: plausible | values for k in vocab})
            | st.dictionaries(words, values, max_size=len(vocab)) | st.dictionaries(st.text(max_size=8), values, max_size=4))


PATHS = st.sampled_from(["data.jsonl", "Dataset/LLMBar/Natural/dataset.json", "mix_data/arithmetic.jsonl",
                         "chat_filtered.json", "x/y/z.parquet", ""])


def check_accounting(result, rows_in: int, where: str, passed_on: set[str] = frozenset()) -> Counter:
    """The importer's promise for ``rows_in`` rows; ``passed_on``: reasons a row carried itself (sampled_solutions
    quarantines a math_samples row with the reason it was not sampled, unchanged)."""
    s = result.stats
    if s.read != rows_in or s.imported + s.quarantined_total + s.duplicates != s.read:
        raise BrokenPromise(f"{where}: read {s.read} of {rows_in}: imported {s.imported} + quarantined "
                            f"{s.quarantined_total} + duplicates {s.duplicates} != read")
    if len(result.quarantine) != s.quarantined_total or len(result.items) != s.items:
        raise BrokenPromise(f"{where}: {len(result.quarantine)} quarantine rows for {s.quarantined_total} quarantined")
    for q in result.quarantine:
        code = base.reason_code(q["reason"])
        if code not in REASON_CODES and q["reason"] not in passed_on:
            raise BrokenPromise(f"{where}: row {q['row_ref']} quarantined with reason {q['reason']!r:.300} "
                                f"(an exception the adapter did not turn into a RowError)")
    return Counter(imported=s.imported, quarantined=s.quarantined_total, duplicates=s.duplicates)


def mutate(node, data, vocab_values, depth: int = 0):
    """One random change somewhere in ``node`` (a dict or list, changed in place)."""
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    if not keys:
        if isinstance(node, dict):
            node[data.draw(st.sampled_from(["x"]))] = data.draw(vocab_values)
        else:
            node.append(data.draw(vocab_values))
        return
    key = data.draw(st.sampled_from(keys))
    child = node[key]
    if isinstance(child, (dict, list)) and depth < 4 and data.draw(st.booleans()):
        return mutate(child, data, vocab_values, depth + 1)
    op = data.draw(st.sampled_from(["delete", "replace", "replace", "type", "grow", "empty"]))
    if op == "delete":
        del node[key]
    elif op == "replace":
        node[key] = data.draw(vocab_values)
    elif op == "type":  # the same content in another JSON type
        node[key] = ([child] if not isinstance(child, list) else json.dumps(child) if data.draw(st.booleans())
                     else (child[0] if child else None))
    elif op == "grow" and isinstance(child, list):
        child.extend(copy.deepcopy(child[: data.draw(st.integers(1, 3))]) or [data.draw(vocab_values)])
    elif op == "grow" and isinstance(child, str):
        node[key] = child * data.draw(st.integers(2, 400))  # long texts: data.max_chars
    else:
        node[key] = "" if isinstance(child, str) else type(child)() if isinstance(child, (list, dict)) else None


BAD_VALUES = (None, "", "   ", 0, -1, 2, 1.5, float("nan"), True, [], {}, [None], {"a": {"b": []}}, "x" * 3000,
              ["a", 1, None], [{"role": "user"}])


def row_neighbours(row: dict) -> list[dict]:
    """The row with each key dropped, and with each key set to each of BAD_VALUES."""
    out = []
    for k in row:
        out.append({j: v for j, v in row.items() if j != k})
        out += [{**row, k: bad} for bad in BAD_VALUES]
    return out


def format_campaign(name: str, examples: int, rng_seed: int = 0, rows_per_example: int = 10,
                    neighbours: bool = False) -> Counter:
    """``examples`` x up to ``rows_per_example`` rows through the importer in format ``name``: mutations of its
    seed row (most) and rows built from scratch."""
    fmt = FORMATS[name]
    seed_path, seed_group, seed_row = SEEDS[name]
    vocab = format_vocabulary(name)
    scratch = row_strategy(vocab)
    words = st.sampled_from(vocab)
    vocab_values = (words | st.none() | st.booleans() | st.integers(-2, 5) | st.integers() | st.floats() | st.text(max_size=20)
                    | st.lists(words | st.integers(0, 3), max_size=4) | st.dictionaries(words, words, max_size=3))
    counts: Counter = Counter()

    def seed_mutant(data):
        row = copy.deepcopy(seed_row)
        for _ in range(data.draw(st.integers(0, 4))):
            mutate(row, data, vocab_values)
        return row

    @_settings(examples, rng_seed)
    @given(data=st.data(), path=st.just(seed_path) | PATHS, group=st.just(seed_group) | st.none() | st.text(max_size=10))
    def one(data, path, group):
        n = data.draw(st.integers(1, rows_per_example))
        batch = [seed_mutant(data) if data.draw(st.integers(0, 4)) else data.draw(scratch) for _ in range(n)]
        if neighbours:
            batch += row_neighbours(batch[0])
        batch = batch + batch[: len(batch) // 3]  # some repeated rows: duplicates
        records = [Record(path, f"{path}:{i}", json.dumps(r, default=str), r, group=group) for i, r in enumerate(batch)]
        result = import_records(records, name, fmt, fmt.default_split, max_chars=2000)
        passed_on = {base.RowError(*(x.strip() for x in r["error"].partition(":")[::2])).reason
                     for r in batch if isinstance(r.get("error"), str)}
        counts.update(check_accounting(result, len(batch), f"format {name}", passed_on))
        counts["inputs"] += len(batch)

    one()
    return counts


# ---- readers -------------------------------------------------------------------------------------------
LINES = (st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
         | (st.integers(1, 50) | st.integers(900, 5000)).map(lambda n: b"[" * n + b"]" * n)  # past the recursion limit
         | row_strategy(format_vocabulary("generic")).map(lambda r: json.dumps(r, default=str).encode()))


def reader_campaign(examples: int, rng_seed: int = 0, neighbours: bool = False) -> Counter:
    counts: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        @_settings(examples, rng_seed)
        @given(lines=st.lists(LINES, min_size=1, max_size=12), suffix=st.sampled_from([".jsonl", ".json", ".parquet"]))
        def one(lines, suffix):
            lines = [l.replace(b"\n", b" ") for l in lines]
            if neighbours and suffix == ".jsonl":  # every line also cut short at several places
                lines += [c for l in lines for c in cuts(l, 8)[1:-1]]
            path = Path(tmp) / f"rows{suffix}"
            path.write_bytes(b"\n".join(lines))
            try:
                result = import_source("fuzz", "generic", [str(path)], "train", max_chars=2000)
            except SourceReadError as e:
                if str(path) not in str(e):
                    raise BrokenPromise(f"a SourceReadError that does not name the file: {e}")
                counts["unreadable files"] += 1
                counts["inputs"] += 1
                return
            rows = sum(1 for l in lines if l.strip()) if suffix == ".jsonl" else result.stats.read
            counts.update(check_accounting(result, rows, f"reader {suffix}"))
            counts["inputs"] += len(lines)

        one()
    return counts


# ---- config files --------------------------------------------------------------------------------------
TINY = yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text())


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))


CONFIG_PATHS = list(_paths(TINY)) + [("models", "dtype"), ("generation", "backend"), ("judge", "k_max"), ("nope",),
                                      ("rl", "train", "batch_size"), ("data", "sources")]
YAML_PIECES = ["models:", "rl:", "  beta:", "  train:", "data:", "  sources:", "    - ", "{", "}", "[", "]", ":", " ",
               "\n", "  ", "- ", "0.08", "-1", "true", "null", "'", '"', "&a", "*a", "!!python/object:os.system",
               "%YAML 1.1", "---", "\t", "k_max: many", "seed: -3"]
YAML_TEXT = st.lists(st.sampled_from(YAML_PIECES) | st.text(max_size=6), max_size=40).map("".join)
VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=6)


def _set(data, path, value):
    node = data
    for k in path[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[path[-1]] = value


def check_config(path: Path) -> str:
    """'valid', or the kind of error; raises BrokenPromise when the message breaks the rules."""
    try:
        load_config(path)
        return "valid"
    except ConfigError as e:
        lines = str(e).splitlines()
        if not lines or any(str(path) not in line for line in lines):
            raise BrokenPromise(f"a config error line that does not name the file {path}: {e}")
        for line in lines:
            if line.startswith(f"invalid config {path}: "):
                field, sep, _ = line[len(f"invalid config {path}: "):].partition(": ")
                if not field.strip() or not sep:
                    raise BrokenPromise(f"a config error line that names no field: {line}")
        first = lines[0]
        return ("invalid value" if first.startswith("invalid config") else "invalid YAML" if first.startswith("invalid YAML")
                else "not UTF-8" if "not UTF-8" in first else first)


def config_campaign(examples: int, rng_seed: int = 0, neighbours: bool = False) -> Counter:
    counts: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"

        def check(content: bytes):
            path.write_bytes(content)
            counts[check_config(path)] += 1
            counts["inputs"] += 1

        @_settings(examples, rng_seed)
        @given(kind=st.sampled_from(["text", "bytes", "mutated"]), text=YAML_TEXT, raw=st.binary(max_size=200),
               where=st.sampled_from(CONFIG_PATHS), value=VALUE)
        def one(kind, text, raw, where, value):
            if kind == "text":
                contents = [t.encode() for t in (cuts(text, 8) if neighbours else [text])]
            elif kind == "bytes":
                contents = [raw]
            else:  # the value at the drawn field (and, with neighbours, at every 8th other field too)
                contents = []
                for w in [where] + (CONFIG_PATHS[CONFIG_PATHS.index(where) % 8::8] if neighbours else []):
                    data = json.loads(json.dumps({w[0]: TINY.get(w[0])}))  # the field's section as tiny.yaml has it
                    _set(data, w, value)
                    contents.append(yaml.safe_dump(data).encode())
            for c in contents:
                check(c)

        one()
    return counts
