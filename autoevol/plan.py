"""Before a run: validate the data as the run would read it, make the optimisation split, and
estimate calls and tokens, without a single request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from autoevol.config import EvolveSettings, OptimizeSettings
from autoevol.data.source import DataSource
from autoevol.errors import ConfigError
from autoevol.methods import load_method
from autoevol.optimization.estimate import Estimate, estimate
from autoevol.optimization.job import read_split
from autoevol.optimization.split import Split


@dataclass(frozen=True, slots=True)
class DryRun:
    """What a run would read and roughly cost, found without a single request."""

    data: dict[str, Any]  # `DataSource.describe()`
    detected: dict[str, Any]  # `DataSource.detected()`
    rows: int  # rows the run will see (after --limit), bad rows included
    bad_rows: int
    split: Split | None  # the optimisation's dev/train split (optimize, run)
    estimate: Estimate


def dry_run(source: DataSource, opt: OptimizeSettings | None, evo: EvolveSettings, *, with_evolve: bool) -> DryRun:
    """Validate the data as the run would (a bad row under on_bad_row="fail" raises DataError), make
    the optimisation split, then estimate; nothing is sent to any model."""
    from autoevol.data.records import BadRow

    if not source.path.exists():
        raise ConfigError(f"data file not found: {source.path}")
    rows = bad = 0
    for item in source.rows():  # validation first: an estimate of unreadable data would mislead
        rows += 1
        bad += isinstance(item, BadRow)
    split = read_split(source, opt, evo.seed) if opt is not None else None
    if opt is not None:
        load_method(opt.initial_method)  # a missing method file is found now, not after paying for a split
    return DryRun(source.describe(), source.detected(), rows, bad, split,
                  estimate_for(source, opt, evo, with_evolve=with_evolve))


def estimate_for(
    source: DataSource, opt: OptimizeSettings | None, evo: EvolveSettings, *, with_evolve: bool
) -> Estimate:
    """The pre-run cost estimate, from the settings and the first 50 rows of the data."""
    from itertools import islice

    n = source.count() if with_evolve else 0
    # The sample skips bad rows whatever the policy: a bad row is the run's business, not the estimate's.
    sample = list(islice(replace(source, on_bad_row="skip").seeds(), 50))
    method = load_method(opt.initial_method if opt else "initial")
    return estimate(opt, evo, n, sample, method)
