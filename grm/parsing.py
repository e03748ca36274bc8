"""f_extract: pointwise scores, principles and critique out of a GRM generation.

Scores come only from the **last** ``\\boxed{...}`` (models often restate an example box earlier), and only
when it follows the critique: in an output with an ``Analysis:`` section, the box must come after a scores line
(``Scores:``, ``Final Scores:``, ``Output:``) written after that section. A final ``\\boxed{`` left unclosed
(the output was cut off) is ``truncated``; the parser never falls back to an earlier box, such as a maths answer
quoted in the critique, which would score a cut-off output. A generation is ``ok`` only if its scores box holds
exactly n integers inside the allowed range; otherwise it is a parse failure with a specific status.
``parse_judgment`` never raises, whatever string it is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OK = "ok"
NO_BOX = "no_box"
WRONG_COUNT = "wrong_count"
OUT_OF_RANGE = "out_of_range"
NOT_INTEGER = "not_integer"
TRUNCATED = "truncated"  # the final \\boxed{ is not closed: the output was cut off before its scores ended
PARSE_STATUSES = (OK, NO_BOX, TRUNCATED, WRONG_COUNT, OUT_OF_RANGE, NOT_INTEGER)

GRADED = (1, 10)  # S_i in {1..10}: the default pointwise range
BINARY = (0, 1)  # single-response training variant: 1 = correct, 0 = incorrect

_BOX = "\\boxed{"
_INT = re.compile(r"[+-]?\d+")
_CRITERIA = re.compile(r"(?:\*\*|#+\s*)?specific\s+criteria\s*(?:\*\*)?\s*:?", re.IGNORECASE)
_ANALYSIS = re.compile(r"(?:\*\*|#+\s*)?analysis\s*(?:\*\*)?\s*:", re.IGNORECASE)
# the line that introduces the scores box; the paper's case studies also end with "### Output:\n\boxed{10, 7}"
_SCORES = re.compile(r"(?:\*\*|#+\s*)?(?:final\s+)?(?:scores?|output)\s*(?:\*\*)?\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedJudgment:
    status: str
    scores: tuple[int, ...] | None
    principles: str
    critique: str

    @property
    def ok(self) -> bool:
        return self.status == OK


def _closing(text: str, start: int) -> int | None:
    """Index just past the brace closing the ``\\boxed{`` at ``start``, or None when it is never closed."""
    depth, i = 1, start + len(_BOX)
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return i if depth == 0 else None


def scores_box(text: str) -> tuple[str, str | None]:
    """(status, content) of the output's scores box: the last ``\\boxed{...}``, when it is closed and follows
    the critique. Status ``ok`` here means only that a box was found; ``parse_scores`` checks its content."""
    start = text.rfind(_BOX)
    if start == -1:
        return NO_BOX, None
    end = _closing(text, start)
    if end is None:
        return TRUNCATED, None
    analyses = list(_ANALYSIS.finditer(text))
    if analyses:
        before = text[:start]
        critique = [m for m in analyses if m.end() <= start]
        # a box before the critique, or inside it with no scores line after it, is not the scores box
        if len(critique) < len(analyses) or not _SCORES.search(before, critique[-1].end()):
            return NO_BOX, None
    return OK, text[start + len(_BOX) : end - 1]


def parse_scores(text: str, n: int, score_range: tuple[int, int] = GRADED) -> tuple[str, tuple[int, ...] | None]:
    if not isinstance(text, str):
        return NO_BOX, None
    status, box = scores_box(text)
    if box is None:
        return status, None
    items = [x.strip() for x in box.split(",")]
    if items == [""]:
        items = []
    if len(items) != n:
        return WRONG_COUNT, None
    if not all(_INT.fullmatch(x) for x in items):
        return NOT_INTEGER, None
    scores = tuple(int(x) for x in items)
    lo, hi = score_range
    if not all(lo <= s <= hi for s in scores):
        return OUT_OF_RANGE, None
    return OK, scores


def split_sections(text: str) -> tuple[str, str]:
    """(principles, critique): the 'Specific Criteria' part and the 'Analysis' part, for storage."""
    if not isinstance(text, str):
        return "", ""
    box_at = text.rfind(_BOX)
    body = text[:box_at] if box_at != -1 else text
    scores_m = list(_SCORES.finditer(body))
    crit_m = _CRITERIA.search(body)
    ana_m = _ANALYSIS.search(body, crit_m.end() if crit_m else 0)
    end = scores_m[-1].start() if scores_m and (not ana_m or scores_m[-1].start() > ana_m.end()) else len(body)
    if ana_m:
        principles = body[crit_m.end() : ana_m.start()] if crit_m else body[: ana_m.start()]
        critique = body[ana_m.end() : end]
    elif crit_m:
        principles, critique = body[crit_m.end() : end], ""
    else:
        principles, critique = "", body[:end]
    return principles.strip(), critique.strip()


def parse_judgment(text: str, n: int, score_range: tuple[int, int] = GRADED) -> ParsedJudgment:
    status, scores = parse_scores(text, n, score_range)
    principles, critique = split_sections(text)
    return ParsedJudgment(status, scores, principles, critique)
