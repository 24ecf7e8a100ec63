"""One vocabulary for why a model stopped, whatever the server calls it.

Servers disagree on the words: OpenAI says `stop`/`length`/`content_filter`/`tool_calls`, vLLM adds
`abort`, llama.cpp's native API says `eos`/`limit`/`word`, Ollama's `done_reason` says `stop`/`length`/
`load`/`unload`, Gemini's compatibility layer `STOP`/`MAX_TOKENS`/`SAFETY`, Anthropic-shaped proxies
`end_turn`/`max_tokens`/`stop_sequence`. The rest of autoevol only ever sees `FinishReason`, so the
row checks in `detect/truncation.py` can decide once: `stop` is an answer, `length` is cut off, and
everything else (filtered, refused, aborted, a tool call) is not a training row.

A missing finish reason counts as `stop`: small servers often omit it, and the text is all there is.
A word nobody here knows is `other`, which fails the row rather than letting it through unflagged.
"""

from __future__ import annotations

from typing import Literal

FinishReason = Literal["stop", "length", "content_filter", "refusal", "tool_calls", "other"]

_WORDS: dict[str, FinishReason] = {
    "stop": "stop", "eos": "stop", "eos_token": "stop", "word": "stop", "end_turn": "stop",
    "stop_sequence": "stop", "end": "stop", "finished": "stop", "complete": "stop", "completed": "stop",
    # "unknown" is what autoevol itself stored for a missing reason before this vocabulary existed.
    "unknown": "stop",
    "length": "length", "limit": "length", "max_tokens": "length", "max_output_tokens": "length",
    "model_length": "length", "token_limit": "length",
    "content_filter": "content_filter", "content_filtered": "content_filter", "safety": "content_filter",
    "recitation": "content_filter", "blocklist": "content_filter", "prohibited_content": "content_filter",
    "spii": "content_filter", "guardrail_intervened": "content_filter",
    "refusal": "refusal",
    "tool_calls": "tool_calls", "function_call": "tool_calls", "tool_use": "tool_calls",
}

#: The reasons whose text may become a row (after the other checks): an answer, or one cut at the cap.
USABLE: frozenset[str] = frozenset({"stop", "length"})


def normalize_finish(raw: object) -> FinishReason:
    """`raw` (a server's finish reason, any type) in autoevol's vocabulary."""
    if raw is None or raw == "":
        return "stop"
    if not isinstance(raw, str):
        return "other"
    return _WORDS.get(raw.strip().lower(), "other")
