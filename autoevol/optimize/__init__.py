"""The optimize phase. The package itself is callable: `autoevol.optimize(...)` is the notebook API's
`autoevol.notebook.optimize` (see `make_package_callable`)."""

from __future__ import annotations

from autoevol.notebook import make_package_callable

make_package_callable(__name__, "optimize")
