"""Keeping secrets out of messages: every form of a key or token that a server, a library or an
error's repr could echo (raw, stripped, escaped, JSON, URL-encoded, base64 at any alignment, and
long runs of it) is replaced before the text reaches a log, an error or a file.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import urllib.parse


def redact(text: str, secret: str | None) -> str:
    """`text` with every form of `secret` a server or a library could echo replaced by `[redacted]`."""
    if not secret or len(secret) < 4:
        return text
    forms, runs = _secret_forms(secret)
    for form in forms:
        text = text.replace(form, "[redacted]")
    if runs is None:
        return text
    # A server may echo the key in part (masked in the middle, cut short): hide any long run of it.
    covered = bytearray(len(text))
    for match in runs.finditer(text):
        covered[match.start():match.start() + _RUN] = b"\x01" * _RUN
    if not any(covered):
        return text
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append("[redacted]")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


#: Keys at least this long also have every run of this many consecutive characters redacted.
_RUN = 8


@functools.lru_cache(maxsize=8)
def _secret_forms(secret: str) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """The encodings of `secret` that end up in error text, longest first, and a pattern of its runs."""
    forms = {
        secret,
        secret.strip(),
        secret.encode("unicode_escape").decode("ascii"),  # repr() of bytes or str, \r as backslash-r
        json.dumps(secret)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    }
    # Base64 (Basic auth, tokens inside a JWT-like echo): the key's bytes at each of the three
    # alignments it can have inside a longer encoded string, minus the edge characters that
    # depend on its neighbours.
    raw = secret.encode("utf-8", "replace")
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode("ascii")
        # Characters are 6-bit groups: keep those whose bits all come from the key.
        core = encoded[-(-8 * pad // 6):(8 * (pad + len(raw))) // 6]
        if len(core) >= _RUN:
            forms.add(core)
    ordered = tuple(sorted((f for f in forms if len(f) >= 4), key=len, reverse=True))
    core_key = secret.strip()
    if len(core_key) < 2 * _RUN:
        return ordered, None
    windows = sorted({core_key[i:i + _RUN] for i in range(len(core_key) - _RUN + 1)})
    return ordered, re.compile("(?=(?:" + "|".join(map(re.escape, windows)) + "))")
