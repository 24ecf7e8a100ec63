"""A settings field added after run schema 2 enters the hashed config only when it is set away from
its default: run directories written before it existed still hash to what they recorded, and a run
that uses the new field is told apart from one that does not."""

from __future__ import annotations

from typing import ClassVar

from autoevol.config import EvolveSettings, OptimizeSettings, config_hash


class _EvolveLater(EvolveSettings):
    LATE_FIELDS: ClassVar[tuple[str, ...]] = (*EvolveSettings.LATE_FIELDS, "later_knob")
    later_knob: int = 3


def test_a_late_field_at_its_default_leaves_the_hash_as_it_was() -> None:
    before = EvolveSettings(rounds=2)
    assert _EvolveLater(rounds=2).hashed() == before.hashed()
    assert config_hash({"evolve": _EvolveLater(rounds=2).hashed()}) == config_hash({"evolve": before.hashed()})


def test_a_late_field_set_away_from_its_default_is_hashed() -> None:
    assert _EvolveLater(later_knob=4).hashed()["later_knob"] == 4
    assert "later_knob" in _EvolveLater(later_knob=4).model_dump()


def test_fields_from_schema_2_are_always_hashed_even_at_their_default() -> None:
    assert set(EvolveSettings().hashed()) - set(EvolveSettings.LATE_FIELDS) == set(EvolveSettings.model_fields) - set(
        EvolveSettings.LATE_FIELDS)
    assert set(OptimizeSettings().hashed()) - set(OptimizeSettings.LATE_FIELDS) == set(
        OptimizeSettings.model_fields) - set(OptimizeSettings.LATE_FIELDS)
