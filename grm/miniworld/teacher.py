"""A programmatic, deliberately imperfect teacher that writes GRM judgments of miniature-world items.

It stands in for the strong sampler of the paper: its text is what the bootstrap model imitates. It judges
in one of three modes, chosen at random per judgment:

* ``careful``: states the task's criterion, writes down its working (e.g. ``7 + 5 = 12``), compares every
  response with that answer (``Response 2: 11 vs 12, a mismatch.``), and scores mechanically (a match gets
  8-10, a mismatch 1-3). Always correct.
* ``fooled`` (rate ``error_rate`` of the non-shortcut judgments): the same careful-looking text, but its
  working arrives at a plausible mistake (that of a wrong response when one is shown), so it is always
  wrong. This is sampling noise in the computation: independent samples rarely repeat it, so voting
  averages it out.
* ``shortcut`` (rate ``shortcut_rates[task]``): a plausibility criterion and no working; it praises the
  first response shown and scores it above the others (the 0/1 variant says 1). Right only by chance, and
  with responses shuffled per sample its votes scatter. It is recognisable from its text, which is what a
  meta RM can learn to down-weight, and it is frequent enough on some task families that a model imitating
  the teacher judges those families by shortcut when greedy. Rejective fine-tuning on the model's own
  correct samples and rule-based RL reward the careful mode, which is what SPCT has to fix here.

With a hint (rejective fine-tuning's hinted sampling) the teacher always works carefully and correctly.
The scores follow the text mechanically in every mode.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Sequence

from grm.miniworld.families import TASKS, wrong_answers

CAREFUL, FOOLED, SHORTCUT = "careful", "fooled", "shortcut"

# Each criterion starts with its own word, so the first token after "Specific Criteria:" decides the mode.
CRITERIA = {
    "add": "sum must be exact",
    "max": "largest number must be named",
    "sort": "order must be ascending",
    "reverse": "reversal must be exact",
    "count": "count must be exact",
}
SHORTCUT_CRITERIA = "plausibility at a glance"


# One careful verdict: the response as copied, the judge's answer restated beside it, match or mismatch. With
# the two values side by side the verdict compares neighbouring tokens; a verdict that had to look the answer
# up in the working was the step a 0.7M model most often failed to learn (grm/miniworld/README.md).
VERDICT = re.compile(r"Response (\d+): (.+?) vs (.+?), a (match|mismatch)\.")


def verdict_line(i: int, value: str, answer: str) -> str:
    return f"Response {i}: {value} vs {answer}, {'a match' if value == answer else 'a mismatch'}."


def verdicts(text: str) -> list[tuple[int, str, str, bool]]:
    """(response number, value copied, answer restated, said to match) for each verdict in a judgment."""
    return [(int(i), value, answer, said == "match") for i, value, answer, said in VERDICT.findall(text)]


def is_shortcut(text: str) -> bool:
    """Whether a judgment (the teacher's, or a model's imitating it) is written in the shortcut mode."""
    return SHORTCUT_CRITERIA in text


@dataclass(frozen=True)
class TeacherJudgment:
    text: str
    mode: str
    scores: tuple[int, ...]  # in the order the responses were shown


def _scores_text(scores: Sequence[int]) -> str:
    return "Scores: \\boxed{" + ", ".join(str(s) for s in scores) + "}"


def judge(
    item: dict,
    shown: Sequence[str],
    rng: random.Random,
    *,
    shortcut_rates: dict[str, float],
    error_rate: float,
    hinted: bool = False,
) -> TeacherJudgment:
    """The teacher's judgment of ``item`` whose responses are shown in the order ``shown``.

    Single-response items get the 0/1 variant (1 = correct); others get one 1-10 score per response.
    """
    meta = json.loads(item["meta"]) if isinstance(item["meta"], str) else item["meta"]
    task = TASKS[meta["task"]]
    args = meta["args"]
    n = len(shown)
    binary = n == 1
    r = rng.random()
    if not hinted and r < shortcut_rates.get(task.name, 0.0):
        mode = SHORTCUT
    elif not hinted and rng.random() < error_rate:
        mode = FOOLED
    else:
        mode = CAREFUL

    if mode == SHORTCUT:
        if binary:
            scores = (1,)
        else:
            scores = (rng.choice((7, 8)),) + tuple(rng.choice((4, 5, 6)) for _ in range(n - 1))
        text = (
            f"Specific Criteria: {SHORTCUT_CRITERIA} (weight 100%).\n"
            f"Analysis: At a glance Response 1 looks right.\n" + _scores_text(scores)
        )
        return TeacherJudgment(text, mode, scores)

    right = task.solve(args)
    answer = right
    if mode == FOOLED:
        # Taken in by a plausible mistake: that of a wrong shown response if there is one. Some arguments
        # admit no mistake at all (a reversal whose random slip lands on the right letter): then it is right.
        shown_wrong = [s for s in shown if s != right]
        mistakes = [rng.choice(shown_wrong)] if shown_wrong else wrong_answers(task, args, rng)
        if mistakes:
            answer = mistakes[0]
        else:
            mode = CAREFUL
    lines = []
    scores = []
    for i, s in enumerate(shown, 1):
        match = s == answer
        lines.append(verdict_line(i, s, answer))
        scores.append((1 if match else 0) if binary else (rng.choice((8, 9, 10)) if match else rng.choice((1, 2, 3))))
    text = (
        f"Specific Criteria: {CRITERIA[task.name]} (weight 100%).\n"
        f"Analysis: {task.working(args, answer)}. " + " ".join(lines) + "\n" + _scores_text(scores)
    )
    return TeacherJudgment(text, mode, tuple(scores))
