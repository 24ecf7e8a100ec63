"""Frozen values that cross module lines: chat messages, completion requests and completions.

A `CompletionRequest` is everything that determines a model's answer (and therefore the cache
key); operational knobs such as timeouts and concurrency live elsewhere on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


def user(content: str) -> Message:
    return Message("user", content)


def system(content: str) -> Message:
    return Message("system", content)


def assistant(content: str) -> Message:
    return Message("assistant", content)


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One chat completion to make. `sample_index` tells k samples of one prompt apart."""

    messages: tuple[Message, ...]
    model: str = ""
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    sample_index: int = 0

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a CompletionRequest needs at least one message")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.sample_index < 0:
            raise ValueError(f"sample_index must be >= 0, got {self.sample_index}")

    def canonical(self) -> dict[str, Any]:
        """Every field that can change the answer, as plain JSON-able data."""
        return {
            "messages": [m.to_dict() for m in self.messages],
            "model": self.model,
            # 1 and 1.0 must hash alike
            "temperature": float(self.temperature),
            "top_p": float(self.top_p),
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
            "sample_index": self.sample_index,
        }


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: The part of `completion_tokens` a reasoning model spent thinking (paid, never shown); 0 if not reported.
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    cached: bool = False
    model: str = ""
