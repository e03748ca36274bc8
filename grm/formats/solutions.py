"""Solutions judged against a ground truth -> correct-vs-incorrect pairwise items, the paper's MATH data
(docs/design.md, "Math data").

One rule for every source of judged solutions: GSM8K's example_model_solutions (judged by its authors,
``is_correct``) and the rows of the math_samples table (sampled by a policy model, judged by grm.math_answers).
The i-th correct solution of a problem is paired with its i-th incorrect one, so each solution is in at most one
pair and a problem with c correct and w incorrect solutions gives min(c, w) items, the correct one first (every
sampler shuffles the order it shows). A problem whose solutions are all correct or all incorrect gives no pair
and is quarantined with that reason, so the importer's count holds: problems read = problems paired +
problems quarantined (+ duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from grm.formats.base import (
    ALL_CORRECT,
    ALL_INCORRECT,
    TOO_FEW_RESPONSES,
    WRONG_TYPE,
    Draft,
    RowContext,
    RowError,
    boolean,
    check_text,
    field_value,
    messages,
    optional_text,
    pairwise,
    text,
    user,
)
from grm.formats.single import gsm8k_final_answer, gsm8k_model_solutions


@dataclass(frozen=True)
class Solution:
    text: str
    correct: bool
    ref: str | int  # which solution of the problem: a solver's name, a sample index


def solution_pairs(conversation: list[dict], solutions: Sequence[Solution], subset: str, *, answer: str,
                   **meta) -> list[Draft]:
    """The correct-vs-incorrect pairs of one problem (module docstring), or ``RowError`` all_correct /
    all_incorrect. A blank solution cannot be shown as a response: it is left out, and named in the reason."""
    if not solutions:
        raise RowError(TOO_FEW_RESPONSES, "no solutions")
    usable = [s for s in solutions if s.text.strip()]
    right = [s for s in usable if s.correct]
    wrong = [s for s in usable if not s.correct]
    if not right or not wrong:
        blank = len(solutions) - len(usable)
        detail = f"{len(right)} of {len(usable)} solutions correct" + (f"; {blank} blank left out" if blank else "")
        raise RowError(ALL_INCORRECT if not right else ALL_CORRECT, detail)
    return [pairwise(conversation, c.text, w.text, 0, subset, answer=answer, pair=[c.ref, w.ref],
                     kind="solution_pair", **meta)
            for c, w in zip(right, wrong)]


def gsm8k_solution_pairs(row: Mapping, ctx: RowContext) -> list[Draft]:
    """example_model_solutions: the four solvers' solutions of a GSM8K test question, paired by is_correct."""
    solutions = [Solution(sol, correct, solver) for solver, sol, correct in gsm8k_model_solutions(row)]
    return solution_pairs(user(text(row, "question")), solutions, "gsm8k",
                          answer=gsm8k_final_answer(text(row, "ground_truth")))


def sampled_solutions(row: Mapping, ctx: RowContext) -> list[Draft]:
    """A row of the math_samples table: a problem, its sampled solutions with ``correct``, or the ``error`` that
    kept it from being sampled (which becomes its quarantine reason, unchanged)."""
    error = optional_text(row, "error")
    if error:
        code, _, detail = error.partition(":")
        raise RowError(code.strip(), detail.strip())
    listed = field_value(row, "solutions")
    if not isinstance(listed, list):
        raise RowError(WRONG_TYPE, f"solutions is {type(listed).__name__}, not a list")
    solutions = []
    for i, s in enumerate(listed):
        if not isinstance(s, Mapping):
            raise RowError(WRONG_TYPE, f"solutions[{i}] is not an object")
        sample = s.get("sample_idx")
        solutions.append(Solution(check_text(s.get("text"), f"solutions[{i}].text", allow_empty=True),
                                  boolean(s, "correct"), i if sample is None else sample))
    return solution_pairs(messages(field_value(row, "conversation"), "conversation"), solutions,
                          optional_text(row, "subset") or ctx.stem, answer=text(row, "reference_answer"),
                          problem_id=row.get("problem_id"), model=row.get("model"))
