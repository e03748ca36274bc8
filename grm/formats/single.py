"""Adapters for verifiable problems and single-response correctness data (label_kind ``rating``).

Problems with a reference solution (GSM8K, MATH) become single-response items whose response is the
reference solution, rated correct (1), with the final answer in ``meta.answer``. As training data they teach
only "correct": the paper's math data is built from them by the math data step instead (stage math_samples
samples solutions, grm.math_answers judges them, grm.formats.solutions pairs them; docs/design.md, "Math data").
"""

from __future__ import annotations

from typing import Mapping

from grm.formats.base import (
    BAD_LABEL,
    MISSING_FIELD,
    WRONG_TYPE,
    Draft,
    RowContext,
    RowError,
    boolean,
    field_value,
    label,
    optional_text,
    rated,
    text,
    user,
)
from grm.math_answers import last_boxed

GSM8K_SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def gsm8k_final_answer(answer: str) -> str:
    """The number after the final '#### ' (train/test) or 'A: ' (example_model_solutions' ground_truth)."""
    for marker in ("####", "\nA:"):
        if marker in answer:
            return answer.rsplit(marker, 1)[1].strip().replace(",", "")
    raise RowError(MISSING_FIELD, "answer has no final '#### <number>' or 'A: <number>' line")


def gsm8k(row: Mapping, ctx: RowContext) -> list[Draft]:
    answer = text(row, "answer")
    return [rated(user(text(row, "question")), answer, True, ctx.stem, answer=gsm8k_final_answer(answer),
                  kind="reference_solution")]


def gsm8k_model_solutions(row: Mapping) -> list[tuple[str, str, bool]]:
    """(solver, solution, is_correct) of an example_model_solutions row, in GSM8K_SOLVERS order."""
    out = []
    for solver in GSM8K_SOLVERS:
        sol = field_value(row, solver)
        if not isinstance(sol, Mapping):
            raise RowError(WRONG_TYPE, f"{solver} is not an object")
        out.append((solver, text(sol, "solution"), boolean(sol, "is_correct")))
    return out


def gsm8k_solutions(row: Mapping, ctx: RowContext) -> list[Draft]:
    """example_model_solutions: four model solutions per test question, each with ``is_correct``."""
    conv = user(text(row, "question"))
    answer = gsm8k_final_answer(text(row, "ground_truth"))
    return [rated(conv, solution, correct, "example_model_solutions", solver=solver, answer=answer,
                  identity=["gsm8k_solutions", solver])
            for solver, solution, correct in gsm8k_model_solutions(row)]


def realcritic(row: Mapping, ctx: RowContext) -> list[Draft]:
    """One model's solution (``reasoning``) with its correctness (``previous_score``: [true] or [false])."""
    score = field_value(row, "previous_score")
    if not (isinstance(score, list) and len(score) == 1 and isinstance(score[0], bool)):
        raise RowError(BAD_LABEL, f"previous_score={score!r} is not [true] or [false]")
    return [rated(user(text(row, "question")), text(row, "reasoning"), score[0], ctx.parent_name or ctx.stem,
                  idx=row.get("idx"), gt=row.get("gt"), pred=row.get("pred"), model=row.get("model"))]


def math_problems(row: Mapping, ctx: RowContext) -> list[Draft]:
    """MATH (hendrycks competition_math: problem, level, type, solution; MATH-500 adds answer, subject)."""
    solution = text(row, "solution")
    answer = optional_text(row, "answer").strip() or last_boxed(solution)
    if not answer:
        raise RowError(MISSING_FIELD, "answer (no 'answer' field and no \\boxed{} in the solution)")
    subset = optional_text(row, "type") or optional_text(row, "subject") or "math"
    return [rated(user(text(row, "problem")), solution, True, subset, answer=answer, level=row.get("level"),
                  kind="reference_solution")]


def realmistake(row: Mapping, ctx: RowContext) -> list[Draft]:
    """ReaLMistake: human expert label ``error`` / ``no_error`` (``error_label`` on the Hub, ``label`` in the
    repository's JSONL). ratings[0] = 1 when the response has no error."""
    key = "error_label" if "error_label" in row else "label"
    correct = label(row, key, {"no_error": True, "error": False})
    metadata = row.get("metadata") if isinstance(row.get("metadata"), Mapping) else {}
    task = metadata.get("task_name") or metadata.get("task") or ctx.parent_name or ctx.stem
    return [rated(user(text(row, "input")), text(row, "llm_response"), correct, str(task),
                  error_categories=row.get("error_categories"), model=metadata.get("llm_response_model"))]

