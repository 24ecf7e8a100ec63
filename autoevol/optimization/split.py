"""The optimisation split: a seeded pool, a fixed dev set disjoint from training, and training
minibatches drawn without replacement (reshuffled each time the training part is exhausted).

Disjoint means by text, not only by row: a training item whose instruction equals a dev item's
(ignoring case and whitespace) is left out, or the optimizer could tune the method on the very
prompts it is then scored on (duplicate prompts are common in ShareGPT-style data).

Every draw is a pure function of (seed, step), so a resumed run sees exactly the same batches.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from autoevol.data.records import Seed
from autoevol.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Split:
    dev: tuple[Seed, ...]
    train: tuple[Seed, ...]
    dev_duplicates: int = 0  # pool items left out of train because their instruction is a dev item's

    def dev_hash(self) -> str:
        """A content hash of the dev set (ids and instructions, in order): what every λ was measured on."""
        digest = hashlib.sha256()
        for item in self.dev:
            digest.update(json.dumps([item.seed_id, item.instruction], ensure_ascii=False).encode("utf-8"))
        return "d-" + digest.hexdigest()[:16]

    def minibatch(self, step: int, size: int, seed: int) -> tuple[Seed, ...]:
        """Step `step` (1-based) gets the next `size` items of a stream of per-epoch shuffles of `train`.

        A batch that straddles two epochs never holds an item twice: an item the new epoch repeats
        is deferred to the next batch, so every epoch still covers each training item exactly once.
        """
        if step < 1:
            raise ValueError(f"steps are numbered from 1, got {step}")
        if not 1 <= size <= len(self.train):
            raise ConfigError(f"a minibatch of {size} cannot be drawn from {len(self.train)} training items")
        stream: deque[int] = deque()
        epoch = 0
        batch: list[int] = []
        for _ in range(step):
            batch = []
            deferred: list[int] = []
            while len(batch) < size:
                if not stream:
                    order = list(range(len(self.train)))
                    random.Random(f"{seed}:epoch:{epoch}").shuffle(order)
                    stream.extend(order)
                    epoch += 1
                item = stream.popleft()
                (deferred if item in batch else batch).append(item)
            stream.extendleft(reversed(deferred))
        return tuple(self.train[i] for i in batch)


def make_split(seeds: Iterable[Seed], *, pool_size: int, dev_size: int, batch_size: int, seed: int) -> Split:
    """Reservoir-sample a pool of min(pool_size, N) seeds, then cut dev and train from it."""
    rng = random.Random(f"{seed}:pool")
    pool: list[Seed] = []
    rows = 0
    for index, item in enumerate(seeds):
        rows = index + 1
        if index < pool_size:
            pool.append(item)
        else:
            slot = rng.randrange(index + 1)
            if slot < pool_size:
                pool[slot] = item
    needed = dev_size + batch_size
    if len(pool) < needed:
        if rows > len(pool):  # the pool cap, not the data, is what is too small
            raise ConfigError(
                f"the optimisation pool holds {len(pool)} of the data's {rows} usable rows but the split "
                f"needs {needed} (dev {dev_size} + minibatch {batch_size}); raise --pool-size or lower "
                "--dev-size/--batch-size"
            )
        raise ConfigError(
            f"the data has {len(pool)} usable rows but the split needs {needed} "
            f"(dev {dev_size} + minibatch {batch_size}); lower --dev-size/--batch-size or add data"
        )
    pool.sort(key=lambda s: s.seed_id)  # the reservoir's order depends on arrival; ids don't
    random.Random(f"{seed}:split").shuffle(pool)
    dev = pool[:dev_size]
    dev_texts = {normalised(s.instruction) for s in dev}
    train = [s for s in pool[dev_size:] if normalised(s.instruction) not in dev_texts]
    dropped = len(pool) - dev_size - len(train)
    if len(train) < batch_size:
        raise ConfigError(
            f"{dropped} of the {len(pool) - dev_size} training items repeat a dev item's instruction; the "
            f"{len(train)} left cannot fill a minibatch of {batch_size}; lower --dev-size/--batch-size, "
            "raise --pool-size or deduplicate the data"
        )
    return Split(dev=tuple(dev), train=tuple(train), dev_duplicates=dropped)


def normalised(text: str) -> str:
    """The text two prompts are compared by: case-folded, every run of whitespace one space."""
    return " ".join(text.casefold().split())
