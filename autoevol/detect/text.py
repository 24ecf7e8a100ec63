"""Script-aware text helpers shared by the failure rules: word tokens, word counts, prose without code.

The rules were written for English answers. These helpers make the parts that are not about
English phrases (is there any content? is the answer short?) behave the same in other scripts.
"""

from __future__ import annotations

import re

# Han ideographs, kana and the CJK compatibility block: scripts written without spaces, where one
# character is roughly one word. Hangul is spaced like English and needs no special case.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# One CJK character, or a run of letters/digits in any script (with inner apostrophes: "don't").
_WORD_RE = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+(?:'[^\W_{_CJK}]+)*")
# Characters that render as nothing; str.strip() keeps them, so a reply of only these looks non-empty.
_INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")

_FENCED_RE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE_RE = re.compile(r"`[^`\n]*`")
# Straight-quoted literals on one line. A single quote only opens or closes a literal when it is
# not between letters, so the apostrophes in "I'm" or "it's" never pair up across prose.
_STRING_RE = re.compile(r"\"[^\"\n]*\"|(?<![^\W_])'[^'\n]*'(?![^\W_])")


def fold_apostrophes(text: str) -> str:
    """Curly apostrophes as straight ones, so "I’m" and "I'm" are the same token."""
    return text.replace("\u2019", "'")


def visible(text: str) -> str:
    """`text` without zero-width characters, stripped."""
    return _INVISIBLE_RE.sub("", text).strip()


def words(text: str) -> list[str]:
    """Lower-cased word tokens in any script; each CJK character is a token of its own."""
    return _WORD_RE.findall(fold_apostrophes(text).lower())


def word_count(text: str) -> int:
    """Number of words, counting one per CJK character (a spaceless script has no other unit).

    For Chinese this over-counts (a word is often two characters), which errs towards "long":
    a length threshold then fires less often, never more.
    """
    return len(words(text))


def prose(text: str) -> str:
    """`text` with fenced code, inline code and straight-quoted string literals blanked out.

    What a program asks its user ("input('Please provide ...')") is not the answer asking us.
    """
    for pattern in (_FENCED_RE, _INLINE_CODE_RE, _STRING_RE):
        text = pattern.sub(" ", text)
    return text
