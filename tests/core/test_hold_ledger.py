"""The holds kept in a cluster's tags and the scaling they call for (pure: no AWS)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.core.hold.ledger import (
    HOLD_TAG_PREFIX,
    Hold,
    ScalingRange,
    check_holder,
    holds_on,
    scaling_wanted,
)

ORIGINAL = ScalingRange(0.0, 4.0, 300)
NOW = 1_767_225_600.0
#: What AWS accepts in a tag value (and key), 256 characters at most.
TAG_CHARACTERS = re.compile(r"[\w .:/=+\-@]{0,256}")


def hold(
    holder: str, floor: float, *, since: float = NOW - 60, until: float = NOW + 3600, **kw: object
) -> Hold:
    return Hold(holder, floor, kw.pop("ceiling", None), since, until, kw.pop("original", ORIGINAL), **kw)  # type: ignore[arg-type]


def tags(*holds: Hold) -> dict[str, str]:
    return {item.tag_key: item.tag_value() for item in holds}


capacities = st.integers(min_value=1, max_value=512).map(lambda halves: halves / 2)


@given(
    floor=capacities,
    ceiling=st.none() | capacities,
    since=st.floats(min_value=0, max_value=4e9),
    length=st.floats(min_value=1, max_value=86400),
    original=st.builds(
        ScalingRange, st.sampled_from([0.0, 0.5, 2.0]), capacities, st.none() | st.integers(300, 86400)
    ),
    started=st.booleans(),
)
def test_a_hold_reads_back_from_its_tag(
    floor: float, ceiling: float | None, since: float, length: float, original: ScalingRange, started: bool
) -> None:
    written = Hold(
        "dag.run-1", floor, ceiling, float(int(since)), float(int(since + length)), original, started
    )
    assert TAG_CHARACTERS.fullmatch(written.tag_value())
    assert TAG_CHARACTERS.fullmatch(written.tag_key) and len(written.tag_key) <= 128
    assert Hold.from_tag(written.tag_key, written.tag_value()) == written


def test_other_tags_and_unreadable_holds_are_left_out() -> None:
    good = hold("a", 8)
    found = holds_on({"team": "etl", f"{HOLD_TAG_PREFIX}broken": "min=eight", **tags(good)})
    assert found == [good]


def test_no_hold_means_the_current_scaling() -> None:
    assert scaling_wanted([], NOW, ScalingRange(0.5, 8.0, None)) == ScalingRange(0.5, 8.0, None)


def test_the_highest_live_floor_wins_and_auto_pause_is_off() -> None:
    wanted = scaling_wanted([hold("a", 4), hold("b", 8)], NOW, ScalingRange(8.0, 8.0, None))
    assert wanted == ScalingRange(8.0, 8.0, None)


def test_an_expired_hold_counts_for_nothing_but_keeps_the_original() -> None:
    expired = hold("a", 16, since=NOW - 7200, until=NOW - 1, original=ScalingRange(0.0, 4.0, 600))
    live = hold("b", 2, original=ScalingRange(2.0, 16.0, None))  # found the cluster already raised
    assert scaling_wanted([expired, live], NOW, ScalingRange(16.0, 16.0, None)) == ScalingRange(
        2.0, 4.0, None
    )
    # With nothing live, the oldest hold's original comes back, auto-pause included.
    assert scaling_wanted([expired], NOW, ScalingRange(16.0, 16.0, None)) == ScalingRange(0.0, 4.0, 600)


def test_a_ceiling_is_raised_for_a_floor_above_the_original_maximum() -> None:
    assert scaling_wanted([hold("a", 8, ceiling=16.0)], NOW, ORIGINAL) == ScalingRange(8.0, 16.0, None)
    assert scaling_wanted([hold("a", 8)], NOW, ORIGINAL) == ScalingRange(8.0, 8.0, None)


@given(floors=st.lists(st.tuples(capacities, st.booleans()), min_size=1, max_size=6))
def test_the_wanted_floor_is_the_maximum_of_the_live_holds(floors: list[tuple[float, bool]]) -> None:
    holds = [
        hold(f"h{index}", floor, until=NOW + 60 if live else NOW - 60)
        for index, (floor, live) in enumerate(floors)
    ]
    wanted = scaling_wanted(holds, NOW, ORIGINAL)
    live_floors = [floor for floor, live in floors if live]
    if live_floors:
        assert wanted.min_capacity == max(live_floors) and wanted.max_capacity >= wanted.min_capacity
    else:
        assert wanted == ORIGINAL


@pytest.mark.parametrize("holder", ["", "has space", "comma,separated", "x" * 101, "naïve"])
def test_a_holder_a_tag_key_cannot_carry_is_refused(holder: str) -> None:
    with pytest.raises(InvalidParameterError, match="holder"):
        check_holder(holder)
