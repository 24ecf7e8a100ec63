"""docs/cli.md is generated from the CLI's own --help; this fails when they drift apart.

Regenerate with: .venv/bin/typer autoevol.cli utils docs --name autoevol --output docs/cli.md
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_matches_the_help_text(tmp_path: Path) -> None:
    fresh = tmp_path / "cli.md"
    typer = Path(sys.executable).with_name("typer")
    subprocess.run([str(typer), "autoevol.cli", "utils", "docs", "--name", "autoevol", "--output", str(fresh)],
                   check=True, capture_output=True, cwd=ROOT, timeout=120)
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert fresh.read_text(encoding="utf-8") == committed, (
        "docs/cli.md is stale: regenerate it with "
        "`.venv/bin/typer autoevol.cli utils docs --name autoevol --output docs/cli.md`"
    )
