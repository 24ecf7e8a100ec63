"""The evolve phase. The package itself is callable: `autoevol.evolve(...)` is the notebook API's
`autoevol.notebook.evolve` (see `make_package_callable`)."""

from __future__ import annotations

from autoevol.notebook import make_package_callable

make_package_callable(__name__, "evolve")
