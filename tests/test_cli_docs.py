"""docs/cli.md is generated from the CLI's own --help; this fails when they drift apart.

Regenerate with: `make docs` (or `.venv/bin/python -m tests.support.cli_docs docs/cli.md`).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.cli_docs import generate

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_matches_the_help_text(tmp_path: Path) -> None:
    fresh = generate(tmp_path / "cli.md")
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert fresh == committed, (
        "docs/cli.md is stale: regenerate it with `make docs` (python -m tests.support.cli_docs docs/cli.md)"
    )
    # Readable as plain text: no HTML entities (Typer escapes help text for HTML).
    assert not re.search(r"&(#x?[0-9a-fA-F]+|[a-z]+);", committed)
    assert "[x>=1]" in committed and "'equal / not equal'" in committed
