"""Answering instead of evolving (the paper's Fig. 1): the evol LLM solved the instruction, or stated
its result, instead of rewriting it into a harder one. The "evolved instruction" is then an answer,
and answering it trains a model on nonsense.

`answered_instead(evolved, parent)` is a pure function: the name of the rule that fired, or None.
It fires only when the text carries no request of its own (no question mark and no asking or
imperative cue, in the languages listed below), so "Show that the answer is 12." or "Write a
sentence that states the result." stay instructions. Three shapes are answers:

  bare_result          nothing but a result: "72", "$\\boxed{72}$", "x = 5", "#### 18"
  answer_statement     it says it is the answer: "The answer is 72.", "答案是72", "La respuesta es 72."
  result_of_question   the parent asked a question (not merely an imperative) and this text, asking
                       nothing, states a number the parent did not hold: "Natalia sold 72 clips."

Declarative instructions without a number of their own ("I need a cover letter for a nursing
job.") are left alone: no rule here judges whether a statement is a request.
"""

from __future__ import annotations

import re

from autoevol.detect.text import words

ANSWER_RULES = ("bare_result", "answer_statement", "result_of_question")

_NUMBER_RE = re.compile(r"(?<![0-9A-Za-z.])-?\d+(?:[.,]\d+)*(?:/\d+)?")
_BOXED_RE = re.compile(r"\\boxed\s*\{")
# What a text made only of a result looks like once markup is gone: numbers, operators, a variable.
_BARE_RE = re.compile(r"^[\s$\\()\[\]{}#*:=<>≈+\-−×÷*/^.,%0-9a-zA-Z]*$")
_BARE_TOKEN_LIMIT = 6
_ANSWER_PHRASE_RE = re.compile(
    r"(?:\b(?:the\s+)?(?:final\s+|correct\s+)?answer\s+(?:is|was|would\s+be|=)|^\s*(?:final\s+)?answer\s*[:：]"
    r"|\bla\s+respuesta\s+(?:es|correcta\s+es)|\bla\s+r[ée]ponse\s+est|\bdie\s+antwort\s+(?:ist|lautet)"
    r"|\ba\s+resposta\s+[ée]|答案(?:是|为|為|：|:)|^\s*答[：:]|正解は|答えは)",
    re.IGNORECASE | re.MULTILINE,
)
_QUESTION_MARKS = ("?", "？", "¿")
# Asking words, wherever they stand: a sentence holding one asks something.
_ASKING_WORDS = frozenset("""
    how what which why who whom whose whether please
    cuánto cuántos cuántas cuál cuáles qué cómo por favor combien quel quelle quels quelles comment pourquoi
    wie wieviel wieviele welche welcher welches warum bitte quanto quantos quantas qual como porque
""".split())
# Imperatives and modal openers count only where a sentence or clause begins: "Calculate the total",
# "Given x, find y", "Can you ..."; inside a statement ("she will find 72 shells") they ask nothing.
_OPENING_WORDS = frozenset("""
    write explain calculate compute find determine describe list give create design implement solve show
    prove compare summarize summarise translate generate provide identify analyze analyse evaluate estimate
    suggest rewrite classify name tell make help draft develop construct derive express simplify convert
    plan outline discuss propose build fix debug refactor optimize optimise sort choose select rank predict
    recommend argue justify illustrate demonstrate verify check assess imagine consider suppose assume let
    use complete fill continue can could would will should may might do does did is are
    calcula calcule escribe explica determina encuentra halla indica demuestra
    calculez écrivez expliquez déterminez trouvez montrez indiquez
    berechne berechnen schreibe schreiben erkläre erklären bestimme finde zeige
    escreva explique determine encontre
""".split())
_CLAUSE_RE = re.compile(r"[.!;:,\n。，；：]+")
_CJK_REQUEST_RE = re.compile(r"[吗嗎呢]|多少|几|幾|请|請|计算|計算|求|写|寫|解释|解釋|如何|怎么|怎麼|什么|什麼|哪|"
                             r"为什么|為什麼|ですか|ますか|ください|計算し|求め|いくつ|何"
                             # Korean requests and questions: "구하세요", "계산하시오", "몇 개입니까", "얼마인가요".
                             # A statement ends in "-다" / "-습니다" / "-어요", none of which is listed.
                             r"|세요|십시오|하시오|구하라|습니까|나요|인가요|얼마|몇|무엇|어떻게|왜")
_MARKUP_RE = re.compile(r"\\boxed\s*\{([^{}]*)\}|\\\(|\\\)|\\\[|\\\]|\$|\*\*")


def _asks(text: str) -> bool:
    """Does `text` ask for anything: a question mark, an asking word, or a clause opening with a request?"""
    if _is_question(text):
        return True
    openers = (words(clause)[:1] for clause in _CLAUSE_RE.split(text))
    return any(first and first[0] in _OPENING_WORDS for first in openers)


def _is_question(text: str) -> bool:
    """A question proper (a mark or an asking word), not merely an imperative such as "Give three tips"."""
    if any(mark in text for mark in _QUESTION_MARKS) or _CJK_REQUEST_RE.search(text):
        return True
    return any(word in _ASKING_WORDS for word in words(text))


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER_RE.findall(text)}


def _is_bare_result(text: str) -> bool:
    """Only numbers, operators and one-letter variables once markup is gone: "72", "x = 5", "$\\boxed{72}$"."""
    plain = _MARKUP_RE.sub(lambda m: f" {m.group(1) or ''} ", text).strip()
    if not plain or not _NUMBER_RE.search(plain) or not _BARE_RE.match(plain):
        return False
    tokens = words(plain)
    return len(tokens) <= _BARE_TOKEN_LIMIT and all(t.isdigit() or len(t) == 1 for t in tokens)


def answered_instead(evolved: str, parent: str) -> str | None:
    """The rule that finds `evolved` an answer to (or the result of) `parent`, or None."""
    text = evolved.strip()
    if not text:
        return None  # nothing to judge: an empty rewrite is a parse failure, named elsewhere
    if _asks(text):
        return None
    if _is_bare_result(text):
        return "bare_result"
    if _BOXED_RE.search(text):
        return "answer_statement"  # a boxed result inside prose that asks nothing
    if _ANSWER_PHRASE_RE.search(text):
        return "answer_statement"
    if _is_question(parent) and _numbers(text) - _numbers(parent):
        return "result_of_question"
    return None
