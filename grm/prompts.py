"""Prompt templates of the pointwise GRM, the meta RM and the pairwise-judge baseline.

Templates are plain text with ``{{placeholder}}`` fields (double braces, so that LaTeX such as
``\\boxed{x, y}`` in a template needs no escaping). The defaults live in ``grm/templates``; any of them can
be replaced by a file of the user's own, e.g. the paper's exact wording to drive the released
DeepSeek-GRM checkpoints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

Message = Mapping[str, str]

_FIELD = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

# Which placeholders each template may use, and which it must use.
_ALLOWED = {
    "grm": {"conversation", "responses", "n", "example_scores", "hint"},
    "single": {"conversation", "responses", "n", "example_scores", "hint"},
    "hint": {"best", "strength"},
    "metarm": {"conversation", "responses", "judgment", "n"},
    "pairwise_judge": {"conversation", "responses"},
    "response": {"i", "response"},
}
_REQUIRED = {
    "grm": {"conversation", "responses"},
    "single": {"conversation", "responses"},
    "hint": {"best"},
    "metarm": {"responses", "judgment"},
    "pairwise_judge": {"conversation", "responses"},
    "response": {"i", "response"},
}


class TemplateError(ValueError):
    """A template file is missing, unreadable, or uses a placeholder it may not use."""


def _check(name: str, text: str, origin: str) -> str:
    used = set(_FIELD.findall(text))
    unknown = used - _ALLOWED[name]
    if unknown:
        raise TemplateError(
            f"template '{name}' ({origin}) uses unknown placeholder(s) {sorted(unknown)}; "
            f"allowed: {sorted(_ALLOWED[name])}"
        )
    missing = _REQUIRED[name] - used
    if missing:
        raise TemplateError(f"template '{name}' ({origin}) lacks required placeholder(s) {sorted(missing)}")
    return text


def _fill(text: str, values: Mapping[str, object]) -> str:
    return _FIELD.sub(lambda m: str(values.get(m.group(1), "")), text)


def _read(path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    # A response block is joined with others by newlines: the file's own final newline is not part of it.
    return text.rstrip("\n") if name == "response" else text


@dataclass(frozen=True)
class Templates:
    grm: str
    single: str
    hint: str
    metarm: str
    pairwise_judge: str
    response: str  # one response block of {{responses}}; blocks are joined by newlines

    @classmethod
    def default(cls) -> "Templates":
        pkg = resources.files("grm") / "templates"
        return cls(**{f.name: _check(f.name, _read(pkg / f"{f.name}.txt", f.name), "built-in") for f in fields(cls)})

    @classmethod
    def load(cls, overrides: Mapping[str, str | Path | None] | None = None, base_dir: Path | None = None) -> "Templates":
        """The default templates with some replaced by files. Relative paths resolve against ``base_dir``."""
        t = cls.default()
        for name, path in (overrides or {}).items():
            if path is None or str(path) == "default":
                continue
            if name not in _ALLOWED:
                raise TemplateError(f"unknown template '{name}'; known: {sorted(_ALLOWED)}")
            p = Path(path)
            if not p.is_absolute() and base_dir is not None:
                p = base_dir / p
            try:
                text = _read(p, name)
            except OSError as e:
                raise TemplateError(f"template '{name}': cannot read {p}: {e.strerror or e}") from e
            t = replace(t, **{name: _check(name, text, str(p))})
        return t

    @classmethod
    def configured(cls, config) -> "Templates":
        """The templates a config names (``prompts.<name>``: a file, resolved like every config path, or
        'default')."""
        p = config.prompts
        files = {f.name: getattr(p, f.name) for f in fields(cls)}
        return cls.load({k: v if v == "default" else config.resolve_path(v) for k, v in files.items()})


ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


def render_conversation(conversation: Sequence[Message]) -> str:
    """The conversation context; its last user turn is the query being answered."""
    return "\n\n".join(f"{ROLE_NAMES.get(m['role'], m['role'].title())}: {m['content']}" for m in conversation)


def render_responses(responses: Sequence[str], templates: "Templates | None" = None) -> str:
    """The responses as numbered blocks (the ``response`` template; the paper's markers by default)."""
    block = (templates or Templates.default()).response
    return "\n".join(_fill(block, {"i": i, "response": r}) for i, r in enumerate(responses, 1))


def example_scores(n: int) -> str:
    return "\\boxed{" + ", ".join(["x"] * n) + "}"


def grm_prompt(
    conversation: Sequence[Message],
    responses: Sequence[str],
    templates: Templates,
    *,
    binary: bool = False,
    hint_best: int | None = None,
    hint_strength: str | None = None,
) -> str:
    """The GRM input for n >= 1 responses, shown in the given order.

    ``binary`` selects the single-response 0/1 training variant (n must be 1). ``hint_best`` (0-based, in
    the order shown) appends the hinted-sampling line used in rejective fine-tuning.
    """
    n = len(responses)
    if n < 1:
        raise ValueError("a GRM prompt needs at least one response")
    if binary and n != 1:
        raise ValueError(f"the binary (0/1) variant takes exactly one response, got {n}")
    hint = ""
    if hint_best is not None:
        if not 0 <= hint_best < n:
            raise ValueError(f"hint_best {hint_best} is out of range for {n} responses")
        strength = f" ({hint_strength})" if hint_strength else ""
        hint = _fill(templates.hint, {"best": hint_best + 1, "strength": strength}).strip()
    template = templates.single if binary else templates.grm
    values = {
        "conversation": render_conversation(conversation),
        "responses": render_responses(responses, templates),
        "n": n,
        "example_scores": example_scores(n),
        "hint": hint,
    }
    text = _fill(template, values)
    if hint and not re.search(r"\{\{\s*hint\s*\}\}", template):
        text = text.rstrip() + "\n" + hint  # a user template without {{hint}} still gets the hint, at the end
    return text.rstrip() + "\n"


# Marks where the GRM's output begins in a meta-RM input. The paper puts query and responses in the prompt and
# the GRM's output in the *response* of the meta RM's chat; one string carries both parts to the trainer and
# the scorer, which split it here (grm.training.metarm.encode). A control character never met in text.
JUDGMENT_MARK = "\x1e"
# Encloses each response's text in a meta-RM input, so that an input longer than the meta RM's context can be cut
# in the middle of its longest response (cap_responses) rather than losing its start or the GRM's scores.
RESPONSE_MARK = "\x1f"
CUT_MARK = "\n[...]\n"  # stands for the middle of a response cut to fit the context


def _unmarked(text: str) -> str:
    return text.replace(JUDGMENT_MARK, "").replace(RESPONSE_MARK, "")


def metarm_input(conversation: Sequence[Message], responses: Sequence[str], judgment: str, templates: Templates) -> str:
    """The meta RM's input: query, responses (in the order the judged sample saw them) and the GRM's output,
    with JUDGMENT_MARK before the output (see metarm_turns) and each response enclosed in RESPONSE_MARKs."""
    return _fill(
        templates.metarm,
        {
            "conversation": render_conversation(conversation),
            "responses": render_responses([RESPONSE_MARK + _unmarked(r) + RESPONSE_MARK for r in responses], templates),
            "judgment": JUDGMENT_MARK + _unmarked(judgment),
            "n": len(responses),
        },
    ).rstrip() + "\n"


def cap_responses(text: str, cap: int) -> tuple[str, int]:
    """A meta-RM input whose marked responses longer than ``cap`` characters keep only their first and last
    cap/2 characters around CUT_MARK (the longest responses lose their middle first), and how many were cut.
    The query, the template and the GRM's output are never touched."""
    prompt, mark, judgment = text.partition(JUDGMENT_MARK)
    parts = prompt.split(RESPONSE_MARK)  # odd indices: the responses' texts
    cut = 0
    for i in range(1, len(parts) - 1, 2):
        r = parts[i]
        if len(r) > cap:
            parts[i] = r[: cap // 2] + CUT_MARK + r[len(r) - (cap - cap // 2):]
            cut += 1
    return RESPONSE_MARK.join(parts) + mark + judgment, cut


def metarm_turns(text: str) -> list[dict[str, str]]:
    """A meta-RM input as a chat: the template up to the GRM's output as the user turn, the output (and any
    template text after it) as the assistant turn. A text without the mark is one user turn."""
    text = text.replace(RESPONSE_MARK, "")
    prompt, mark, judgment = text.partition(JUDGMENT_MARK)
    if not mark:
        return [{"role": "user", "content": text}]
    return [{"role": "user", "content": prompt.rstrip()}, {"role": "assistant", "content": judgment.rstrip()}]


def pairwise_judge_prompt(conversation: Sequence[Message], responses: Sequence[str], templates: Templates) -> str:
    if len(responses) != 2:
        raise ValueError(f"the pairwise judge takes exactly two responses, got {len(responses)}")
    return _fill(
        templates.pairwise_judge,
        {"conversation": render_conversation(conversation), "responses": render_responses(responses, templates)},
    ).rstrip() + "\n"


def as_chat(prompt: str) -> list[dict[str, str]]:
    """A prompt as a one-turn chat; the backend applies the model's chat template to it."""
    return [{"role": "user", "content": prompt}]
