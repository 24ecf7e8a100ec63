"""Replies for the throughput benchmark's fake server: a parseable rewrite, or a passing answer."""

from __future__ import annotations

from typing import Any


def reply(body: dict[str, Any]) -> str:
    last = body["messages"][-1]["content"]
    if "#Finally Rewritten Instruction#" in last:
        seed = last.rsplit("#Instruction#:", 1)[-1].strip()
        return f"#Finally Rewritten Instruction#: {seed} Show every intermediate step."
    return "First we add the parts, then we multiply. The answer is: 42."
