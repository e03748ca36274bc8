"""Final answers of math solutions, and whether one equals the ground truth (docs/design.md, "Math data").

A solution's final answer is its last ``\\boxed{...}`` (MATH's convention, and what the math data step asks the
policy for), else the number after GSM8K's ``#### ``. Whether it equals the reference is decided by math-verify
(Hugging Face's maintained checker, on sympy): LaTeX and plain answers are parsed and compared as maths, so
1/2 = 0.5 = \\dfrac12, 70,000 = 70000, x = 3 matches 3, 90^\\circ = 90 and 18\\text{ dollars} = 18, while
\\sqrt{3} != 1.732.

math-verify bounds each parse and comparison with SIGALRM, which Python allows only in a process's main thread;
``grade_batch`` is a plain function of picklable arguments so that a caller can run it in a worker process.
"""

from __future__ import annotations

import re
from typing import Sequence

_GSM8K_FINAL = re.compile(r"####\s*([^\n]+)")


def last_boxed(solution: str) -> str | None:
    """The content of the last \\boxed{...} (balanced braces), MATH's way of marking the final answer."""
    start = solution.rfind("\\boxed")
    if start < 0:
        return None
    i = solution.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[j], 0)
        if depth == 0:
            return solution[i + 1 : j]
    return None


def final_answer(solution: str) -> str | None:
    """The answer a solution ends with: its last complete \\boxed{}, else GSM8K's last '#### n'; None if neither."""
    boxed = last_boxed(solution)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    found = _GSM8K_FINAL.findall(solution)
    return found[-1].strip() if found else None


def equivalent(answer: str, reference: str, *, timeout_s: int | None = 5) -> bool:
    """Whether two final answers are the same mathematical object (math-verify; both read as LaTeX).
    ``timeout_s`` bounds each parse and comparison (main thread only; None: unbounded)."""
    from math_verify import parse, verify

    gold = parse(f"${reference}$", parsing_timeout=timeout_s)
    pred = parse(f"${answer}$", parsing_timeout=timeout_s)
    if not gold or not pred:  # nothing math-verify can read: the same text, spaces aside, is still the same answer
        return _plain(answer) == _plain(reference)
    return bool(verify(gold, pred, timeout_seconds=timeout_s))


def _plain(s: str) -> str:
    return re.sub(r"\s+", "", s)


def grade(solution: str, reference: str, *, timeout_s: int | None = 5) -> tuple[str | None, bool]:
    """(final answer, correct): a solution without a final answer is incorrect."""
    answer = final_answer(solution)
    return answer, answer is not None and equivalent(answer, reference, timeout_s=timeout_s)


def grade_batch(pairs: Sequence[tuple[str, str]], timeout_s: int | None = 5) -> list[tuple[str | None, bool]]:
    """``grade`` over (solution, reference) pairs."""
    return [grade(s, r, timeout_s=timeout_s) for s, r in pairs]
