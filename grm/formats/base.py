"""What every format adapter shares: the row error, the item draft, and strict field accessors.

An adapter is a function ``convert(row, ctx) -> list[item draft]`` that either returns 1..n item drafts or
raises ``RowError`` with a reason code; the importer turns a ``RowError`` into a quarantine row. Adapters
never drop a row silently and never let a bad row raise anything but ``RowError``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Callable, Mapping, Sequence

# Reason codes of quarantine rows (the part of ``reason`` before the first ':').
INVALID_JSON = "invalid_json"  # a line or file that does not parse (e.g. truncated)
INVALID_UTF8 = "invalid_utf8"
NOT_AN_OBJECT = "not_an_object"  # a JSON value that is not an object where a row is expected
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"  # a structural field of the wrong type (a list that is a string, ...)
NON_TEXT = "non_text"  # a text field (query, response) that is not a string
EMPTY_TEXT = "empty_text"
BAD_LABEL = "bad_label"  # a label that is not one of the format's values
BEST_OUT_OF_RANGE = "best_out_of_range"
TIE = "tie"  # the label says no response is better: the GRM's ground truth needs a single best
NO_MAJORITY = "no_majority"  # annotators disagree with no majority
INCONSISTENT = "inconsistent_preferences"  # pairwise preferences that contradict each other (a cycle)
NO_SINGLE_BEST = "no_single_best"  # consistent preferences that still leave no unique best response
TOO_FEW_RESPONSES = "too_few_responses"
BAD_CONVERSATION = "bad_conversation"  # roles out of order, last turn not the user's, ...
TOO_LONG = "too_long"  # the row is longer than data.max_chars
ALL_CORRECT = "all_correct"  # every solution of a problem is right: no incorrect one to pair it with
ALL_INCORRECT = "all_incorrect"  # every solution of a problem is wrong: no correct one to pair

ROLES = ("system", "user", "assistant")
SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")  # the file types a source may hold


class RowError(ValueError):
    """A row that cannot become an item; ``reason`` is ``code: detail`` and goes to the quarantine table."""

    def __init__(self, code: str, detail: str = ""):
        self.code = code
        self.detail = detail
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


def reason_code(reason: str) -> str:
    return reason.split(":", 1)[0]


@dataclass(frozen=True)
class RowContext:
    """Where a row comes from: adapters derive subset names from paths (LLMBar, RealCritic, PPE)."""

    path: str  # the file's path, or the HF dataset id
    group: str | None = None  # the key of a JSON object of lists (EvalBiasBench's bias type)

    @property
    def parent_name(self) -> str:
        parts = PurePath(self.path).parts
        return parts[-2] if len(parts) >= 2 else ""

    @property
    def stem(self) -> str:
        name = PurePath(self.path).name
        for suffix in SUFFIXES:
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name


@dataclass
class Draft:
    """An item before the importer gives it its source, format, split and id."""

    conversation: list[dict]
    responses: list[str]
    label_kind: str
    best: int | None
    ratings: list[float] | None
    subset: str
    meta: dict = field(default_factory=dict)


def pairwise(conversation: list[dict], first: str, second: str, better: int, subset: str, **meta: Any) -> Draft:
    """A two-response item; ``better`` is 0 or 1."""
    return Draft(conversation, [first, second], "best", better, None, subset, meta)


def listwise(conversation: list[dict], responses: list[str], best: int, subset: str,
             ratings: Sequence[float] | None = None, **meta: Any) -> Draft:
    return Draft(conversation, list(responses), "best", best, list(ratings) if ratings is not None else None, subset, meta)


def rated(conversation: list[dict], response: str, correct: bool | int, subset: str, **meta: Any) -> Draft:
    """A single-response item with a 0/1 correctness label."""
    return Draft(conversation, [response], "rating", None, [float(int(correct))], subset, meta)


def user(query: str, system: str | None = None) -> list[dict]:
    conv = [{"role": "system", "content": system}] if system else []
    return conv + [{"role": "user", "content": query}]


# ---- strict accessors: each failure is a RowError naming the field -----------------------------------------
def field_value(row: Mapping, key: str) -> Any:
    if key not in row or row[key] is None:
        raise RowError(MISSING_FIELD, key)
    return row[key]


def text(row: Mapping, key: str, *, allow_empty: bool = False) -> str:
    v = field_value(row, key)
    return check_text(v, key, allow_empty=allow_empty)


def check_text(v: Any, where: str, *, allow_empty: bool = False) -> str:
    if not isinstance(v, str):
        raise RowError(NON_TEXT, f"{where} is {type(v).__name__}, not text")
    if not allow_empty and not v.strip():
        raise RowError(EMPTY_TEXT, where)
    return v


def optional_text(row: Mapping, key: str) -> str:
    v = row.get(key)
    if v is None:
        return ""
    return check_text(v, key, allow_empty=True)


def text_list(row: Mapping, key: str, n: int | None = None) -> list[str]:
    v = field_value(row, key)
    if not isinstance(v, list):
        raise RowError(WRONG_TYPE, f"{key} is {type(v).__name__}, not a list")
    if n is not None and len(v) != n:
        raise RowError(WRONG_TYPE, f"{key} has {len(v)} entries, expected {n}")
    return [check_text(x, f"{key}[{i}]") for i, x in enumerate(v)]


def label(row: Mapping, key: str, values: Mapping[Any, Any]) -> Any:
    """Map a label through ``values``; ints given as strings ("1") and floats (1.0) count as the int."""
    v = field_value(row, key)
    for candidate in _label_forms(v):
        # True == 1 in Python: a boolean only matches a boolean key, an int only a non-boolean key
        if any(k == candidate and isinstance(k, bool) == isinstance(candidate, bool) for k in values):
            return values[candidate]
    allowed = ", ".join(repr(k) for k in values)
    raise RowError(BAD_LABEL, f"{key}={_short(v)} is not one of {allowed}")


def _label_forms(v: Any) -> list:
    if isinstance(v, bool):
        return [v]
    if isinstance(v, int):
        return [v, str(v)]
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        return [int(v), str(int(v))]
    if isinstance(v, str):
        s = v.strip()
        forms: list = [s]
        try:
            forms.append(int(s))
        except ValueError:
            pass
        return forms
    return []


def boolean(row: Mapping, key: str) -> bool:
    """true/false, 1/0, or the strings "true"/"false" (any case)."""
    v = field_value(row, key)
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    raise RowError(BAD_LABEL, f"{key}={_short(v)} is not true/false or 1/0")


def number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise RowError(WRONG_TYPE, f"{where}={_short(v)} is not a finite number")
    return float(v)


def messages(v: Any, where: str) -> list[dict]:
    """A list of {role, content} chat messages (extra keys such as RMB's ``language`` are dropped)."""
    if not isinstance(v, list) or not v:
        raise RowError(WRONG_TYPE, f"{where} is not a non-empty list of messages")
    out = []
    for i, m in enumerate(v):
        if not isinstance(m, Mapping):
            raise RowError(WRONG_TYPE, f"{where}[{i}] is not a message object")
        role = m.get("role")
        if role not in ROLES:
            raise RowError(BAD_CONVERSATION, f"{where}[{i}].role={_short(role)}")
        out.append({"role": role, "content": check_text(m.get("content"), f"{where}[{i}].content")})
    return out


def split_prompt_and_reply(chat: list[dict], where: str) -> tuple[list[dict], str]:
    """A full chat ending with the assistant's reply -> (conversation up to the user's query, reply)."""
    if len(chat) < 2 or chat[-1]["role"] != "assistant":
        raise RowError(BAD_CONVERSATION, f"{where} does not end with an assistant reply")
    return chat[:-1], chat[-1]["content"]


def _short(v: Any, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def meta_json(meta: Mapping) -> str:
    return json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class Format:
    """A published dataset format: how one of its rows becomes item drafts."""

    name: str
    description: str  # one line, shown by `grm data formats`
    convert: Callable[[Mapping, RowContext], list[Draft]]
    default_split: str = "eval"
    hf_split: str = "train"  # the split loaded when a source is an HF dataset id
