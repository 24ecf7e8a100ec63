"""The optimisation split: a seeded pool, a fixed dev set disjoint from training, and training
minibatches drawn without replacement (reshuffled each time the training part is exhausted).

Every draw is a pure function of (seed, step), so a resumed run sees exactly the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from autoevol.data.records import Seed
from autoevol.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Split:
    dev: tuple[Seed, ...]
    train: tuple[Seed, ...]

    def minibatch(self, step: int, size: int, seed: int) -> tuple[Seed, ...]:
        """Step `step` (1-based) gets the next `size` items of a per-epoch shuffle of `train`."""
        start = (step - 1) * size
        out: list[Seed] = []
        for position in range(start, start + size):
            epoch, offset = divmod(position, len(self.train))
            order = list(range(len(self.train)))
            random.Random(f"{seed}:epoch:{epoch}").shuffle(order)
            out.append(self.train[order[offset]])
        return tuple(out)


def make_split(seeds: Iterable[Seed], *, pool_size: int, dev_size: int, batch_size: int, seed: int) -> Split:
    """Reservoir-sample a pool of min(pool_size, N) seeds, then cut dev and train from it."""
    rng = random.Random(f"{seed}:pool")
    pool: list[Seed] = []
    for index, item in enumerate(seeds):
        if index < pool_size:
            pool.append(item)
        else:
            slot = rng.randrange(index + 1)
            if slot < pool_size:
                pool[slot] = item
    needed = dev_size + batch_size
    if len(pool) < needed:
        raise ConfigError(
            f"the data has {len(pool)} usable rows but the split needs {needed} "
            f"(dev {dev_size} + minibatch {batch_size}); lower --dev-size/--batch-size or add data"
        )
    pool.sort(key=lambda s: s.seed_id)  # the reservoir's order depends on arrival; ids don't
    random.Random(f"{seed}:split").shuffle(pool)
    return Split(dev=tuple(pool[:dev_size]), train=tuple(pool[dev_size:]))
