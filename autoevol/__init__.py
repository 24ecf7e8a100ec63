"""autoevol: Auto Evol-Instruct as a library and a command-line tool.

`autoevol.evolve`, `autoevol.optimize` and `autoevol.run` are the synchronous notebook functions
(`autoevol.notebook`); the async API is `autoevol.api`. Both load on first use, so `import autoevol`
stays light. The phases themselves are the packages `autoevol.evolution` and `autoevol.optimization`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autoevol._version import __version__

if TYPE_CHECKING:
    from autoevol.notebook import evolve, optimize, run

__all__ = ["__version__", "evolve", "optimize", "run"]


def __getattr__(name: str) -> Any:
    if name in ("evolve", "optimize", "run"):
        import importlib

        return getattr(importlib.import_module("autoevol.notebook"), name)
    raise AttributeError(f"module 'autoevol' has no attribute {name!r}")
