"""The optimisation split: pool, fixed disjoint dev set, minibatches without replacement."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from autoevol.config import OptimizeSettings
from autoevol.data.records import Seed
from autoevol.data.source import DataSource
from autoevol.errors import ConfigError
from autoevol.optimization.job import read_split
from autoevol.optimization.split import Split, make_split, normalised
from autoevol.types import user
from tests.support.optimize_script import write_data


def seeds(n: int) -> list[Seed]:
    return [Seed(f"s{i:04d}", (user(f"question {i}"),), f"data:{i}") for i in range(n)]


def ids(items: tuple[Seed, ...] | list[Seed]) -> list[str]:
    return [s.seed_id for s in items]


@pytest.mark.parametrize(("n", "pool_size", "expected"), [(100, 30, 30), (20, 2000, 20), (30, 30, 30)])
def test_pool_is_min_of_pool_size_and_data(n: int, pool_size: int, expected: int) -> None:
    split = make_split(seeds(n), pool_size=pool_size, dev_size=5, batch_size=3, seed=1)
    assert len(split.dev) == 5
    assert len(split.dev) + len(split.train) == expected
    everything = ids(split.dev) + ids(split.train)
    assert len(set(everything)) == expected  # no seed twice
    assert set(everything) <= set(ids(seeds(n)))


def test_pool_samples_the_whole_file_not_its_head() -> None:
    split = make_split(seeds(1000), pool_size=50, dev_size=10, batch_size=5, seed=0)
    positions = sorted(int(s.seed_id[1:]) for s in split.dev + split.train)
    assert positions[-1] > 500  # a reservoir over all rows, not the first 50


def test_dev_is_disjoint_from_train_and_fixed() -> None:
    a = make_split(seeds(60), pool_size=2000, dev_size=12, batch_size=4, seed=7)
    b = make_split(seeds(60), pool_size=2000, dev_size=12, batch_size=4, seed=7)
    assert not set(ids(a.dev)) & set(ids(a.train))
    assert a == b
    # The dev set does not depend on the step; no minibatch ever draws from it.
    drawn = {s.seed_id for t in range(1, 30) for s in a.minibatch(t, 4, seed=7)}
    assert not drawn & set(ids(a.dev))
    assert drawn == set(ids(a.train))


def test_split_does_not_depend_on_input_order() -> None:
    forward = make_split(seeds(40), pool_size=2000, dev_size=8, batch_size=4, seed=3)
    backward = make_split(list(reversed(seeds(40))), pool_size=2000, dev_size=8, batch_size=4, seed=3)
    assert forward == backward


def test_different_seed_gives_a_different_split() -> None:
    a = make_split(seeds(60), pool_size=2000, dev_size=10, batch_size=4, seed=1)
    b = make_split(seeds(60), pool_size=2000, dev_size=10, batch_size=4, seed=2)
    assert ids(a.dev) != ids(b.dev)


def test_minibatches_cover_each_epoch_without_replacement_then_reshuffle() -> None:
    split = make_split(seeds(15), pool_size=2000, dev_size=3, batch_size=4, seed=0)
    assert len(split.train) == 12
    epoch1 = [split.minibatch(t, 4, seed=0) for t in (1, 2, 3)]
    epoch2 = [split.minibatch(t, 4, seed=0) for t in (4, 5, 6)]
    for epoch in (epoch1, epoch2):
        flat = [s for batch in epoch for s in batch]
        assert sorted(ids(flat)) == sorted(ids(split.train))  # every item exactly once per epoch
    assert [ids(b) for b in epoch1] != [ids(b) for b in epoch2]  # reshuffled when exhausted


def test_a_minibatch_that_straddles_epochs_never_repeats_an_item() -> None:
    split = make_split(seeds(13), pool_size=2000, dev_size=3, batch_size=4, seed=0)
    assert len(split.train) == 10  # 10 % 4 != 0: batch 3 takes 2 old-epoch and 2 new-epoch items
    for seed in range(40):
        batches = [split.minibatch(t, 4, seed) for t in range(1, 26)]
        for batch in batches:
            assert len(set(ids(batch))) == 4, f"seed {seed}: duplicate inside {ids(batch)}"
        # Over 25 batches = 100 draws = 10 epochs, each item is drawn exactly 10 times.
        counts = Counter(s.seed_id for batch in batches for s in batch)
        assert set(counts.values()) == {10}


def test_minibatches_are_deterministic_and_differ_by_seed() -> None:
    split = make_split(seeds(50), pool_size=2000, dev_size=10, batch_size=5, seed=0)
    first = [ids(split.minibatch(t, 5, seed=11)) for t in range(1, 12)]
    again = [ids(split.minibatch(t, 5, seed=11)) for t in range(1, 12)]
    other = [ids(split.minibatch(t, 5, seed=12)) for t in range(1, 12)]
    assert first == again
    assert first != other


def test_minibatch_rejects_nonsense() -> None:
    split = Split(dev=tuple(seeds(2)), train=tuple(seeds(3)))
    with pytest.raises(ValueError, match="from 1"):
        split.minibatch(0, 2, seed=0)
    with pytest.raises(ConfigError, match="minibatch of 4"):
        split.minibatch(1, 4, seed=0)


def test_too_little_data_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as info:
        make_split(seeds(12), pool_size=2000, dev_size=10, batch_size=5, seed=0)
    message = str(info.value)
    assert "12 usable rows" in message and "needs 15" in message
    assert "dev 10" in message and "minibatch 5" in message and "--dev-size" in message


def test_a_pool_too_small_for_the_split_names_the_pool_size() -> None:
    with pytest.raises(ConfigError) as info:
        make_split(seeds(500), pool_size=8, dev_size=10, batch_size=5, seed=0)
    message = str(info.value)
    assert "pool holds 8 of the data's 500" in message and "--pool-size" in message


def test_empty_data_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="0 usable rows"):
        make_split([], pool_size=2000, dev_size=2, batch_size=1, seed=0)


def test_read_split_honours_the_row_limit(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.jsonl", 50)
    settings = OptimizeSettings(dev_size=5, batch_size=3)
    split = read_split(DataSource(data, limit=12), settings, seed=0)
    assert len(split.dev) + len(split.train) == 12
    assert {s.seed_id for s in split.dev + split.train} == {f"data:{i}" for i in range(1, 13)}
    with pytest.raises(ConfigError, match="6 usable rows"):
        read_split(DataSource(data, limit=6), settings, seed=0)


def test_train_leaves_out_items_whose_text_repeats_a_dev_item() -> None:
    # 20 distinct questions, each three times with different case and spacing, under distinct ids.
    variants = ("question {}", "QUESTION  {}", " Question\n{} ")
    items = [Seed(f"s{k}{i:02d}", (user(v.format(i)),), f"data:{k}{i}")
             for k, v in enumerate(variants) for i in range(20)]
    split = make_split(items, pool_size=2000, dev_size=8, batch_size=4, seed=5)

    def text(s: Seed) -> str:
        return normalised(s.instruction)

    assert text(items[0]) == text(items[20]) == text(items[40]) == "question 0"
    dev_texts = {text(s) for s in split.dev}
    assert not dev_texts & {text(s) for s in split.train}
    # Only the repeats of dev items are gone: every other question still reaches training.
    assert {text(s) for s in split.train} == {text(s) for s in items} - dev_texts
    assert split.dev_duplicates == 60 - 8 - len(split.train) > 0
    drawn = {s.seed_id for t in range(1, 30) for s in split.minibatch(t, 4, seed=5)}
    assert drawn == set(ids(split.train))


def test_duplicates_that_leave_too_few_training_items_are_a_clear_error() -> None:
    # Ten of twelve items ask the same thing: whichever 8 form the dev set, at most 2 can train.
    items = [Seed(f"s{i:02d}", (user("Same question" if i % 6 else f"question {i}"),), f"d:{i}") for i in range(12)]
    with pytest.raises(ConfigError) as info:
        make_split(items, pool_size=2000, dev_size=8, batch_size=3, seed=0)
    assert "repeat a dev item's instruction" in str(info.value) and "deduplicate" in str(info.value)
