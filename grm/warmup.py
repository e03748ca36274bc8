"""The format warm-up (docs/design.md, "Cold start"): SFT examples in the GRM's output format, distilled from a
strong judge's written critiques, so that a small pretrained model writes a scores box before RFT asks it to.

A small chat model given a GRM prompt writes no ``\\boxed{}`` at all, so rejective fine-tuning finds nothing to
accept. Auto-J's ``single_traindata.jsonl`` holds GPT-4 critiques of single responses ending in ``Rating: [[n]]``;
each becomes a target ``Analysis: <the critique's conclusion>`` + ``Scores: \\boxed{n}``. The conclusion is its
last paragraph, cut at a sentence end to ``critique_chars``, so the box stays within a few hundred tokens (the
whole critiques, ~400 tokens each, taught a model to write at length and never reach the box). Responses to the
same query with different ratings also make pairwise and listwise examples: the prompt shows them in a seeded
order, the analysis gives each one's conclusion, and the box holds their ratings in that order.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from grm.prompts import Templates, grm_prompt
from grm.seeds import derive_seed

# Auto-J's single-response prompt: the query and the response between *** lines
_AUTOJ_DATA = re.compile(r"\[Query\]:\s*(.*?)\n\*\*\*\n\[Response\]:\s*(.*?)\n\*\*\*\n\[END DATA\]", re.S)
_RATING = re.compile(r"\s*Rating:\s*\[\[(\d+(?:\.\d+)?)\]\]\.?\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Critique:
    """One judged response: where it came from, the query, the response, the judge's critique and rating."""

    ref: str  # file:line
    query: str
    response: str
    critique: str
    score: int  # 1..10

    @property
    def conversation(self) -> list[dict]:
        return [{"role": "user", "content": self.query}]


@dataclass
class Critiques:
    rows: list[Critique] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # 'file:line: reason', one per row left out


def parse_autoj_single(value, ref: str) -> tuple[Critique | None, str | None]:
    """(critique, None), or (None, why) for a row that is not an Auto-J single-response critique."""
    if not isinstance(value, Mapping):
        return None, f"{ref}: not a JSON object"
    msg, out = value.get("usrmsg"), value.get("target_output")
    if not isinstance(msg, str) or not isinstance(out, str):
        return None, f"{ref}: usrmsg and target_output must be text"
    data = _AUTOJ_DATA.search(msg)
    if data is None or not data.group(1).strip() or not data.group(2).strip():
        return None, f"{ref}: usrmsg has no [Query]: ... [Response]: ... [END DATA] block"
    rating = _RATING.search(out)
    if rating is None:
        return None, f"{ref}: target_output does not end in 'Rating: [[n]]'"
    score = round(float(rating.group(1)))
    if not 1 <= score <= 10:
        return None, f"{ref}: rating {rating.group(1)} is outside 1-10"
    critique = out[: rating.start()].strip()
    if not critique:
        return None, f"{ref}: the critique before the rating is empty"
    return Critique(ref, data.group(1).strip(), data.group(2).strip(), critique, score), None


def read_critiques(path: str | Path) -> Critiques:
    """Every row of Auto-J single-response critique files; a row that is not one is reported, not fatal. A file
    that cannot be read at all raises ValueError naming it."""
    from grm.formats.readers import SourceReadError, iter_records  # the readers every data source goes through

    out = Critiques()
    try:
        for rec in iter_records(str(path)):
            if rec.error is not None:
                out.problems.append(f"{rec.row_ref}: {rec.error}")
                continue
            row, why = parse_autoj_single(rec.value, rec.row_ref)
            out.rows.append(row) if row is not None else out.problems.append(why)
    except SourceReadError as e:
        raise ValueError(f"warmup.data: {e}") from None
    return out


def conclusion(critique: str, max_chars: int) -> str:
    """The critique's last paragraph (its verdict), whole sentences up to ``max_chars`` (at least one, cut at a
    word when a single sentence is longer)."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", critique) if p.strip()]
    last = " ".join(paragraphs[-1].split()) if paragraphs else ""
    out = ""
    for sentence in _SENTENCE_END.split(last):
        if out and len(out) + 1 + len(sentence) > max_chars:
            break
        out = f"{out} {sentence}".strip()
    if len(out) > max_chars:
        out = out[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "."
    return out


def target(conclusions: Sequence[str], scores: Sequence[int]) -> str:
    """The GRM output the warm-up teaches: a short analysis, then the scores box (grm.parsing reads it)."""
    if len(conclusions) == 1:
        analysis = conclusions[0]
    else:
        analysis = " ".join(f"Response {i}: {c}" for i, c in enumerate(conclusions, 1))
    return f"Analysis: {analysis}\nScores: \\boxed{{{', '.join(str(s) for s in scores)}}}"


def warmup_examples(critiques: Sequence[Critique], templates: Templates, *, critique_chars: int = 300,
                    listwise_max: int = 4, seed: int = 0) -> list[dict]:
    """Single examples for every critique, and for each query with responses of different ratings one pairwise
    (two of them) and, with three or more, one listwise example (up to ``listwise_max``), responses in a seeded
    order. Rows of the ``warmup_examples`` table."""
    rows = []

    def add(kind: str, group: Sequence[Critique]) -> None:
        rows.append({
            "example_id": f"{kind}:{'+'.join(c.ref for c in group)}",
            "kind": kind,
            "refs": [c.ref for c in group],
            "n_responses": len(group),
            "scores": [c.score for c in group],
            "prompt": grm_prompt(group[0].conversation, [c.response for c in group], templates),
            # the analysis shares one budget, so a listwise target reaches its box as soon as a single one does
            "completion": target([conclusion(c.critique, max(100, critique_chars // len(group))) for c in group],
                                 [c.score for c in group]),
        })

    by_query: dict[str, list[Critique]] = defaultdict(list)
    for c in critiques:
        add("single", [c])
        by_query[c.query].append(c)
    for query, group in by_query.items():
        distinct = list({c.score: c for c in group}.values())  # one response per rating: a clear order to learn
        if len(distinct) < 2:
            continue
        rng = random.Random(derive_seed(seed, "warmup", query))
        rng.shuffle(distinct)
        add("pairwise", distinct[:2])
        if len(distinct) >= 3:
            add("listwise", distinct[:listwise_max])
    return rows
