"""Interim: replaced by the parse/rules branch."""

from __future__ import annotations

from autoevol.detect.rules import OK, Verdict


def truncation_verdict(text: str, finish_reason: str) -> Verdict:
    if finish_reason == "length":
        return Verdict(True, "truncated", "finish_reason_length")  # type: ignore[arg-type]
    return OK
