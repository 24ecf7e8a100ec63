"""LLM-facing prompts: package-data templates plus a render/parse pair for each.

Templates live next to this file as `<name>.txt` and use `{{name}}` placeholders. Rendering is
strict: a missing or an unexpected variable raises ValueError, and values are inserted in a single
pass, so braces or `{{...}}` inside a value (JSON, code, a method's `{instruction}` slot) are never
re-interpreted. Changing a template's text changes every request built from it, and therefore the
response-cache keys of the runs that use it.

Deviation from the paper (SPEC §5.8): `optimize.txt` adds one sentence asking the optimizer to keep
the method's `{instruction}` input line and its reply-format block with the final marker. Without
it, rewrites silently lose the slot or rename the marker the parser needs.

Evaluator feedback (`OptimizeSettings.shows_feedback`, off in `paper`): `analyze_feedback.txt`
and `optimize_feedback.txt` are our own text in the paper's order (trajectory, analysis, method
rewrite). The trajectory is shown as readable text with the checks' verdict beside each stage, and
the current method's failed dev items follow it, so the optimizer sees what λ counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from autoevol.methods.method import EvolvingMethod
from autoevol.types import Message, assistant, system, user

__all__ = [
    "PROMPT_NAMES",
    "analysis_messages",
    "feedback_analysis_messages",
    "feedback_optimization_messages",
    "load_template",
    "optimization_messages",
    "parse_optimized_method",
    "render",
    "render_template",
    "respond_messages",
    "template_variables",
]

PROMPT_NAMES: tuple[str, ...] = (
    "analyze",
    "optimize",
    "analyze_feedback",
    "optimize_feedback",
    "judge_equal",
    "respond_system",
    "respond_math_system",
    "tag",
)

_VAR_RE = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")
_OPEN_RE = re.compile(r"```[ \t]*Optimized[ \t]+Method[ \t:]*\r?\n", re.IGNORECASE)
# Every fence inside the block. One followed by a word ("```python") opens an inner code block; a
# bare one closes the inner block if one is open, and otherwise closes the outer block.
_FENCE_RE = re.compile(r"```(?P<lang>[ \t]*\w)?")
# An unterminated block is accepted only if it visibly ends where a method ends: at the slot or an
# input/output marker. Anything else is probably a reply cut off by max_tokens.
_COMPLETE_END_RE = re.compile(r"(?:\{instruction\}|#[A-Za-z][A-Za-z ]*#[ \t]*:?)\s*\Z")


@cache
def load_template(name: str) -> str:
    """The text of `autoevol/prompts/<name>.txt`, trailing whitespace removed."""
    if name not in PROMPT_NAMES:
        raise ValueError(f"unknown prompt template {name!r}; known: {', '.join(PROMPT_NAMES)}")
    return resources.files("autoevol.prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8").rstrip()


def template_variables(text: str) -> frozenset[str]:
    return frozenset(_VAR_RE.findall(text))


def render_template(text: str, **values: str) -> str:
    """Fill every `{{name}}` in `text`; exactly the template's variables must be given, all strings."""
    needed = template_variables(text)
    missing, extra = sorted(needed - values.keys()), sorted(values.keys() - needed)
    if missing or extra:
        raise ValueError(f"template variables do not match: missing {missing}, unexpected {extra}")
    wrong = sorted(k for k, v in values.items() if not isinstance(v, str))
    if wrong:
        raise ValueError(f"template values must be strings: {wrong}")
    return _VAR_RE.sub(lambda m: values[m.group(1)], text)


def render(name: str, **values: str) -> str:
    return render_template(load_template(name), **values)


def _trajectory_json(trajectory: Sequence[Mapping[str, Any]]) -> str:
    if not trajectory:
        raise ValueError("a trajectory needs at least one case")
    for case in trajectory:
        if not isinstance(case, Mapping) or not {"id", "stage0", "stage1"} <= case.keys():
            raise ValueError(f"each trajectory case needs 'id', 'stage0' and 'stage1', got {case!r}")
    # Same shape as the reference code: a compact JSON list of {"id", "stage0", "stage1", ...}.
    return json.dumps([dict(case) for case in trajectory], ensure_ascii=False, indent=None)


def analysis_messages(trajectory: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Evol Trajectory Analysis (SPEC §1.5): one user turn; the reply is free-text feedback."""
    return [user(render("analyze", trajectory=_trajectory_json(trajectory)))]


def optimization_messages(
    trajectory: Sequence[Mapping[str, Any]], feedback: str, method: EvolvingMethod
) -> list[Message]:
    """Evolving Method Optimization (SPEC §1.6, §5.10): the ETA turn, its answer, then the EMO turn.

    The optimizer thus sees trajectory, feedback and current method together, which is what the
    EMO prompt's "the instructions above" refers to.
    """
    return [
        *analysis_messages(trajectory),
        assistant(feedback),
        user(render("optimize", method=method.template)),
    ]


def feedback_analysis_messages(trajectory: str, dev_failures: str) -> list[Message]:
    """Trajectory analysis with the checks' verdicts: `trajectory` is the cases as text with a verdict
    beside each stage, `dev_failures` the incumbent's failed dev items ("" for none)."""
    if not trajectory.strip():
        raise ValueError("a trajectory needs at least one case")
    block = f"{dev_failures.strip()}\n\n" if dev_failures.strip() else ""
    return [user(render("analyze_feedback", trajectory=trajectory.strip(), dev_failures=block))]


def feedback_optimization_messages(
    trajectory: str, dev_failures: str, feedback: str, method: EvolvingMethod
) -> list[Message]:
    """The method rewrite after `feedback_analysis_messages`, in the same chat (as the paper's EMO turn)."""
    return [
        *feedback_analysis_messages(trajectory, dev_failures),
        assistant(feedback),
        user(render("optimize_feedback", method=method.template)),
    ]


def _outer_close(body: str) -> int | None:
    """Where the outer block's closing fence starts in `body`, pairing inner ```lang ... ``` blocks."""
    inner_open = False
    for fence in _FENCE_RE.finditer(body):
        if inner_open:
            # Inside a code example only a bare fence means anything: it ends the example.
            inner_open = fence.group("lang") is not None
        elif fence.group("lang") is not None:
            inner_open = True
        else:
            return fence.start()
    return None


def parse_optimized_method(reply: str) -> str | None:
    """The text of the first ```Optimized Method fenced block, stripped; None if absent or empty.

    A method may contain code examples: a ```lang fence opens an inner block that the next bare
    fence closes, and the outer block ends at the first bare fence that closes no inner block.

    A block whose closing fence is missing is accepted only when its text ends with the
    `{instruction}` slot or a `#...#:` marker, i.e. when it looks complete rather than truncated.
    """
    opening = _OPEN_RE.search(reply)
    if opening is None:
        return None
    body = reply[opening.end() :]
    closing = _outer_close(body)
    if closing is not None:
        body = body[:closing]
    elif not _COMPLETE_END_RE.search(body):
        return None
    text = body.strip()
    return text or None


def respond_messages(
    instruction: str, *, math: bool = False, history: Sequence[Message] | None = None,
    system_prompt: str | None = None,
) -> list[Message]:
    """The answerer's chat: system prompt, any earlier turns, then the instruction as the user turn.

    `system_prompt` is the seed's own system turn, which replaces ours so that a training row's
    answers were written in the context the row shows; a math format request is appended to it.
    """
    earlier = list(history or [])
    if any(m.role == "system" for m in earlier):
        raise ValueError("history must not contain a system message; respond_messages adds its own")
    prompt = load_template("respond_math_system" if math else "respond_system")
    if system_prompt is not None:
        prompt = f"{system_prompt}\n\n{prompt}" if math else system_prompt
    return [system(prompt), *earlier, user(instruction)]
