"""docs/cli.md: Typer's generated reference, made readable as plain Markdown.

Typer escapes the help text for HTML (`&#x27;`, `[x&gt;=1]`), which shows verbatim wherever the
file is read as text (a terminal, an editor, `less`); the entities are turned back into characters.

    python -m tests.support.cli_docs docs/cli.md     (or `make docs`)
"""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def generate(output: Path) -> str:
    typer = Path(sys.executable).with_name("typer")
    subprocess.run([str(typer), "autoevol.cli", "utils", "docs", "--name", "autoevol", "--output", str(output)],
                   check=True, capture_output=True, cwd=ROOT, timeout=120)
    text = html.unescape(output.read_text(encoding="utf-8"))
    output.write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    generate(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "cli.md"))
