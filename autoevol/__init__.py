"""autoevol: Auto Evol-Instruct as a library and a command-line tool.

`autoevol.evolve`, `autoevol.optimize` and `autoevol.run` are the synchronous notebook API
(`autoevol.notebook`); the async API is `autoevol.api`. Both load on first use, so `import autoevol`
stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "evolve", "optimize", "run"]


def __getattr__(name: str) -> Any:
    import importlib

    if name in ("evolve", "optimize"):  # callable packages: see autoevol/evolve/__init__.py
        return importlib.import_module(f"autoevol.{name}")
    if name == "run":
        return importlib.import_module("autoevol.notebook").run
    raise AttributeError(f"module 'autoevol' has no attribute {name!r}")
