"""The evolve phase. The package itself is callable: `autoevol.evolve(...)` is the notebook API's
`autoevol.notebook.evolve`, whether or not this package was imported first (a submodule import
binds `autoevol.evolve` to the package, so a plain function of that name could not survive it)."""

from __future__ import annotations

import sys
import types
from typing import Any


class _Callable(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from autoevol import notebook

        return notebook.evolve(*args, **kwargs)


sys.modules[__name__].__class__ = _Callable
