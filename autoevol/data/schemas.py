"""Turn one raw row (a dict) into a `Seed`. Pure functions; every error is a `DataError` that
names the file, the line (or 0-based row index) and the field.

Schemas:
- `instruction`: one instruction field (default "instruction"; "question" for GSM8K) plus an optional
  response field (default: "answer" for "question", "response"/"completion" for "prompt", else
  "output"/"response", whichever is present).
- `alpaca`: `instruction` + optional `input` + optional `output`. Self-Instruct seed tasks, which
  keep input/output in an `instances` list, are read from their first instance. Decision: a
  non-empty `input` travels inside the user turn as `instruction + "\\n\\n" + input`, so evolution
  can rewrite the input together with the instruction (Evol-Instruct's "complicate input" needs
  this) and training stacks see a single user message.
- `sharegpt`: `conversations` = [{"from": "human"|"gpt"|"system", "value": ...}] ("user",
  "assistant", "chatgpt", "bing", "bard", "model" and role/content keys are accepted too).
- `messages`: OpenAI-style `messages` = [{"role", "content"}]; content may be a list of text parts.
- `auto`: chosen from the first row's keys.

Seed ids: the id field's value when the user names one (or, by default, when the row has an "id"),
else `f"{file_stem}:{line}"`. Changing this rule changes every seed id and so invalidates resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from autoevol.data.records import Seed, Turn
from autoevol.errors import DataError
from autoevol.types import Role

SCHEMAS: tuple[str, ...] = ("auto", "instruction", "alpaca", "sharegpt", "messages")

# (row, line) -> Seed; the path and field names are bound when the schema is resolved.
SeedParser = Callable[[Mapping[str, Any], int], Seed]

_ROLE_MAP: dict[str, str] = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
}

_RESPONSE_DEFAULTS: dict[str, tuple[str, ...]] = {
    "question": ("answer", "output", "response"),
    "prompt": ("response", "completion", "output"),
}


class _Row:
    """A row plus where it came from, so every error can name path, line and field."""

    def __init__(self, row: Mapping[str, Any], path: str, line: int):
        self.row, self.path, self.line = row, path, line

    def error(self, message: str, field: str | None = None) -> DataError:
        return DataError(message, path=self.path, line=self.line, field=field)

    def text(
        self, key: str, *, required: bool = True, within: Mapping[str, Any] | None = None, name: str = ""
    ) -> str | None:
        """The string at `key` of the row (or of `within`); None when optional and absent or null."""
        container = self.row if within is None else within
        name = name or key
        value = container.get(key)
        if value is None:
            if required:
                keys = ", ".join(map(str, container)) or "none"
                raise self.error(f"missing field (row has keys: {keys})", name)
            return None
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {type(value).__name__}", name)
        return value

    def instruction(self, key: str) -> str:
        text = self.text(key) or ""
        if not text.strip():
            raise self.error("empty instruction", key)
        return text


def _seed_id(r: _Row, id_field: str | None, stem: str) -> str:
    """The row's own id when the user named an id field (required) or the row has "id" (optional)."""
    key = id_field or "id"
    value = r.row.get(key)
    if value is None or value == "":
        if id_field:
            raise r.error("missing or empty id", id_field)
        return f"{stem}:{r.line}"
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise r.error(f"id must be a string or an integer, got {type(value).__name__}", key)
    return str(value)


def _turns_from_list(r: _Row, key: str, role_key: str, content_key: str) -> tuple[Turn, ...]:
    items = r.row.get(key)
    if items is None:
        raise r.error("missing field", key)
    if not isinstance(items, list):
        raise r.error(f"expected a list, got {type(items).__name__}", key)
    turns: list[Turn] = []
    raw_roles: list[tuple[Any, str]] = []  # (role as written, where), for order errors
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise r.error(f"expected an object, got {type(item).__name__}", where)
        # Accept both ShareGPT (from/value) and OpenAI (role/content) keys in either list.
        rkey = role_key if role_key in item else ("role" if "role" in item else "from")
        ckey = content_key if content_key in item else ("content" if "content" in item else "value")
        raw_role = item.get(rkey)
        role = _ROLE_MAP.get(raw_role.lower()) if isinstance(raw_role, str) else None
        if role is None:
            raise r.error(f"unknown or missing role {raw_role!r}", f"{where}.{rkey}")
        content = _content(r, item.get(ckey), f"{where}.{ckey}")
        if role == "user" and not content.strip():
            raise r.error("empty user turn", f"{where}.{ckey}")
        turns.append(Turn(cast(Role, role), content))
        raw_roles.append((raw_role, f"{where}.{rkey}"))
    if not any(t.role == "user" for t in turns):
        raise r.error("conversation has no user turn", key)
    _check_order(r, turns, raw_roles)
    return tuple(turns)


def _check_order(r: _Row, turns: list[Turn], raw_roles: list[tuple[Any, str]]) -> None:
    """System turns come first, then the user speaks first: a seed's instruction is its first user
    turn and its reference the first assistant turn, so an assistant opening (a greeting) would
    become the reference. Repeated roles (two models answering) are kept as they are."""
    spoken = False
    for turn, (raw_role, where) in zip(turns, raw_roles, strict=True):
        if turn.role == "system" and spoken:
            raise r.error(f"a system turn ({raw_role!r}) after the conversation started", where)
        if turn.role == "assistant" and not spoken:
            raise r.error(f"a conversation starts with a user turn (after any system turn), got {raw_role!r}",
                          where)
        spoken = spoken or turn.role != "system"


def _content(r: _Row, value: Any, where: str) -> str:
    """A turn's text; OpenAI-style lists of text parts are joined with newlines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for i, part in enumerate(value):
            text = part.get("text") if isinstance(part, Mapping) and part.get("type") == "text" else None
            if not isinstance(text, str):
                raise r.error("only text content parts are supported", f"{where}[{i}]")
            parts.append(text)
        return "\n".join(parts)
    raise r.error(f"expected a string, got {type(value).__name__}", where)


def _pick_response_field(field: str, row: Mapping[str, Any]) -> str | None:
    for key in _RESPONSE_DEFAULTS.get(field, ("output", "response")):
        if key in row:
            return key
    return None


def instruction_parser(
    path: str,
    stem: str,
    *,
    field: str = "instruction",
    response_field: str | None = None,
    id_field: str | None = None,
) -> SeedParser:
    """Rows with one instruction field and an optional response field."""

    def parse(row: Mapping[str, Any], line: int) -> Seed:
        r = _Row(row, path, line)
        instruction = r.instruction(field)
        resp_key = response_field or _pick_response_field(field, row)
        response = r.text(resp_key, required=response_field is not None) if resp_key else None
        return _make_seed(r, id_field, stem, instruction, response, {field, resp_key})

    return parse


def alpaca_parser(path: str, stem: str, *, id_field: str | None = None) -> SeedParser:
    """Alpaca rows (instruction/input/output) and Self-Instruct seed tasks (instances[0])."""

    def parse(row: Mapping[str, Any], line: int) -> Seed:
        r = _Row(row, path, line)
        instruction = r.instruction("instruction")
        source, prefix = row, ""
        if "input" not in row and "output" not in row and "instances" in row:
            instances = row["instances"]
            if not isinstance(instances, list) or not instances or not isinstance(instances[0], Mapping):
                raise r.error("expected a non-empty list of objects", "instances")
            source, prefix = instances[0], "instances[0]."
        extra = r.text("input", required=False, within=source, name=prefix + "input") or ""
        output = r.text("output", required=False, within=source, name=prefix + "output")
        user_text = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        return _make_seed(r, id_field, stem, user_text, output, {"instruction", "input", "output", "instances"})

    return parse


def _meta(r: _Row, used: set[str | None], id_field: str | None) -> str | None:
    """The columns the schema did not read (source, license, category...), as one JSON object text:
    they travel to the output rows. A JSON string, so JSONL and Parquet hold the same type whatever
    the columns are; None when there are none."""
    rest = {str(k): v for k, v in r.row.items() if k not in used and k != (id_field or "id")}
    return json.dumps(rest, ensure_ascii=False, default=str) if rest else None


def _make_seed(
    r: _Row, id_field: str | None, stem: str, user_text: str, response: str | None, used: set[str | None]
) -> Seed:
    turns: tuple[Turn, ...] = (Turn("user", user_text),)
    # An empty reference (e.g. a blank CSV cell) means "no reference", not an empty answer.
    if response is not None and response.strip():
        turns += (Turn("assistant", response),)
    return Seed(_seed_id(r, id_field, stem), turns, f"{r.path}:{r.line}", _meta(r, used, id_field))


def conversation_parser(
    path: str, stem: str, *, key: str, role_key: str, content_key: str, id_field: str | None = None
) -> SeedParser:
    """ShareGPT (`conversations`, from/value) or OpenAI (`messages`, role/content) rows."""

    def parse(row: Mapping[str, Any], line: int) -> Seed:
        r = _Row(row, path, line)
        turns = _turns_from_list(r, key, role_key, content_key)
        return Seed(_seed_id(r, id_field, stem), turns, f"{path}:{line}", _meta(r, {key}, id_field))

    return parse


def detect_schema(first_row: Mapping[str, Any]) -> tuple[str, str | None]:
    """(schema, instruction field) chosen from a row's keys, or (\"\", None) when nothing fits."""
    keys = set(first_row)
    if "messages" in keys:
        return "messages", None
    if "conversations" in keys:
        return "sharegpt", None
    if "instruction" in keys and ({"input", "instances"} & keys):
        return "alpaca", None
    for field in ("instruction", "question", "prompt"):
        if field in keys:
            return "instruction", field
    return "", None


def detected_schema(name: str, first_row: Mapping[str, Any], field: str | None = None) -> tuple[str, str | None]:
    """How `resolve_schema(name, first_row, field=field)` reads the rows: (schema, instruction field).

    The field is None for conversation schemas (the first user turn is the instruction); the schema
    is "" when "auto" finds nothing (resolving would raise the error that says what to pass).
    """
    if name == "auto":
        if field is not None:
            return "instruction", field
        name, field = detect_schema(first_row)
        if not name:
            return "", None
    if name == "instruction":
        return name, field or "instruction"
    return name, "instruction" if name == "alpaca" else None


def resolve_schema(
    name: str,
    first_row: Mapping[str, Any],
    *,
    field: str | None = None,
    id_field: str | None = None,
    response_field: str | None = None,
    path: str | Path = "",
    stem: str | None = None,
    line: int | None = None,
) -> SeedParser:
    """A parser `(row, line) -> Seed` for schema `name` ("auto" looks at `first_row`)."""
    path_s = str(path)
    stem = stem if stem is not None else (Path(path_s).stem or "row")
    if name not in SCHEMAS:
        raise DataError(f"unknown schema {name!r}; choose one of {', '.join(SCHEMAS)}", path=path_s)
    if name == "auto":
        if field is not None:
            name = "instruction"
        else:
            name, field = detect_schema(first_row)
        if not name:
            keys = ", ".join(map(str, first_row)) or "none"
            raise DataError(
                f"cannot detect the schema from keys ({keys}); pass --schema and --field",
                path=path_s,
                line=line,
            )
    if name != "instruction" and (field or response_field):
        raise DataError(
            f"field= and response_field= apply to the instruction schema, not {name!r}", path=path_s
        )
    if name == "instruction":
        return instruction_parser(
            path_s, stem, field=field or "instruction", response_field=response_field, id_field=id_field
        )
    if name == "alpaca":
        return alpaca_parser(path_s, stem, id_field=id_field)
    if name == "sharegpt":
        return conversation_parser(
            path_s, stem, key="conversations", role_key="from", content_key="value", id_field=id_field
        )
    return conversation_parser(
        path_s, stem, key="messages", role_key="role", content_key="content", id_field=id_field
    )
