"""The generation backend interface (docs/design.md, "Sampling").

Given chat prompts, a number of samples per prompt, a temperature, a token budget and one seed per prompt,
a backend returns the sampled texts. The backend applies the model's chat template. Sample j of a prompt
with seed s is reproducible: same model, prompt, s and j give the same text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

Chat = Sequence[dict]  # [{"role": ..., "content": ...}, ...]

SKIPPED_TOO_LONG = "prompt_too_long"


@dataclass(frozen=True)
class Request:
    prompt_id: str
    messages: Chat
    n: int
    seed: int


@dataclass(frozen=True)
class Sample:
    text: str
    seed: int  # the seed this sample was drawn with
    n_tokens: int = 0
    finish_reason: str = "stop"  # stop | length | skipped


@dataclass(frozen=True)
class Result:
    prompt_id: str
    samples: list[Sample]  # n samples, or none when skipped
    skipped: str | None = None  # why the prompt was not sampled (e.g. prompt_too_long: 3012 > 2048 tokens)
    prompt_tokens: int = 0


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 = greedy
    max_new_tokens: int = 512
    top_p: float = 1.0


class BackendError(RuntimeError):
    """The backend failed for the whole request (server down, out of memory, worker died)."""


class Backend(ABC):
    name: str = "base"

    @abstractmethod
    def generate(self, requests: Sequence[Request], params: SamplingParams) -> list[Result]:
        """One Result per request, in order."""

    def close(self) -> None:  # release engines, servers, memory
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
