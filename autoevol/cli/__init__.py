"""The `autoevol` command line (entry point `autoevol.cli:app`).

    main.py     the app, `ping`, `methods`, `resume`     jobs.py     `evolve`, `optimize`, `run`
    cache.py    `cache stats|clear`                    report.py   `report`, `stats`
    options.py  options shared by the commands         support.py  errors at the edge, printing
"""

from autoevol.cli.main import app

__all__ = ["app"]
