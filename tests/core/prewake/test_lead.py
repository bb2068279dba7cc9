"""The lead of a pre-wake: the wake's kind, the history tag, and the lead set, learned or defaulted."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

import pytest
from caller_words import airflow_words_in
from cluster_snapshots import described_cluster
from core_fakes import provisioned_description, v1_description, v2_description

from airflow_aurora_wake.core.cluster import classify_cluster
from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.core.prewake import (
    DEFAULT_LEAD,
    HISTORY_SIZE,
    HISTORY_TAG,
    MIN_SAMPLES,
    Lead,
    WakeKind,
    add_to_history,
    choose_lead,
    parse_history,
    wake_kind,
    warm_seconds,
)

V2 = WakeKind.V2_RESUME
V1 = WakeKind.V1_RESUME
START = WakeKind.START
#: What AWS accepts in a tag value.
TAG_VALUE = re.compile(r"[A-Za-z0-9 _.:/=+\-@]{0,256}")


def history(*entries: str) -> dict[str, str]:
    return {HISTORY_TAG: " ".join(entries), "team": "data"}


def lead(
    kind: WakeKind = V2,
    tags: dict[str, str] | None = None,
    *,
    set_seconds: float | None = None,
    seconds_until_auto_pause: int | None = None,
    max_seconds: float = 3600.0,
) -> Lead:
    return choose_lead(
        kind=kind,
        tags=tags or {},
        set_seconds=set_seconds,
        seconds_until_auto_pause=seconds_until_auto_pause,
        max_seconds=max_seconds,
    )


# --- the kind of wake ---------------------------------------------------------------------


def test_a_v2_cluster_with_auto_pause_resumes_like_v2() -> None:
    assert wake_kind(described_cluster()) is V2


def test_a_v1_cluster_with_auto_pause_resumes_like_v1_paused_or_not() -> None:
    assert wake_kind(described_cluster(v1_capacity=0)) is V1
    assert wake_kind(described_cluster(v1_capacity=4)) is V1


def test_a_v1_cluster_without_auto_pause_sleeps_only_at_capacity_0() -> None:
    never = v1_description(capacity=4)
    never["ScalingConfigurationInfo"]["AutoPause"] = False
    assert wake_kind(classify_cluster(never)) is None
    assert wake_kind(classify_cluster({**never, "Capacity": 0})) is V1


@pytest.mark.parametrize(
    "description",
    [provisioned_description(), v2_description(min_capacity=0.5)],
    ids=["provisioned", "v2-without-auto-pause"],
)
def test_a_running_cluster_that_never_sleeps_has_no_wake(description: dict[str, Any]) -> None:
    assert wake_kind(classify_cluster(description)) is None


def test_a_v2_instance_proven_paused_is_a_v2_resume_whatever_the_scaling() -> None:
    snapshot = classify_cluster(v2_description(min_capacity=0.5))
    assert wake_kind(replace(snapshot, seen_paused=True)) is V2


@pytest.mark.parametrize("status", ["stopped", "stopping", "starting"])
@pytest.mark.parametrize(
    "description",
    [
        provisioned_description(),
        v2_description(min_capacity=0),
        v2_description(min_capacity=1),
        v1_description(),
    ],
    ids=["provisioned", "v2-auto-pause", "v2-always-on", "v1"],
)
def test_a_stopped_cluster_of_any_kind_is_a_start(description: dict[str, Any], status: str) -> None:
    assert wake_kind(classify_cluster({**description, "Status": status})) is START


def test_the_defaults_cover_the_field_reports() -> None:
    # v2: field reports up to 45 s; v1: about 25 s; a start: several minutes.
    assert DEFAULT_LEAD == {V2: 60.0, V1: 60.0, START: 900.0}


# --- the history tag ------------------------------------------------------------------------


def test_the_history_reads_back_what_was_added_newest_last() -> None:
    tags: dict[str, str] = {}
    for kind, seconds in [(V2, 14.84), (START, 312), (V2, 31.25)]:
        tags[HISTORY_TAG] = add_to_history(tags, kind, seconds)
    assert tags[HISTORY_TAG] == "v2-resume:14.8 start:312.0 v2-resume:31.2"
    assert parse_history(tags) == [(V2, 14.8), (START, 312.0), (V2, 31.2)]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "garbage",
        "v3-resume:12.0",
        "v2-resume:",
        "v2-resume:abc",
        "v2-resume:-4.0",
        "v2-resume:nan",
        "v2-resume:inf",
        "v2-resume:1e3",
        "v2-resume:1_000",
        "v2-resume:12.0:3",
        "V2-RESUME:12.0",
        "v2-resume=12.0",
        ":12.0",
        "v2-resume:99999999999",
    ],
)
def test_an_entry_that_cannot_be_read_is_left_out(value: str) -> None:
    tags = history("v2-resume:10.0", value, "start:300.5")
    assert parse_history(tags) == [(V2, 10.0), (START, 300.5)]


@pytest.mark.parametrize("tags", [{}, {"team": "data"}, {HISTORY_TAG: ""}])
def test_no_history_is_an_empty_one(tags: dict[str, str]) -> None:
    assert parse_history(tags) == []


def test_adding_rewrites_only_the_entries_it_can_read() -> None:
    tags = history("v2-resume:10.0", "edited-by-hand", "v1-resume:20.0")
    assert add_to_history(tags, V2, 12) == "v2-resume:10.0 v1-resume:20.0 v2-resume:12.0"


def test_the_history_keeps_the_newest_entries_up_to_the_size() -> None:
    tags = history(*(f"start:{n}.0" for n in range(HISTORY_SIZE)))
    value = add_to_history(tags, START, 999)
    entries = parse_history({HISTORY_TAG: value})
    assert len(entries) == HISTORY_SIZE
    assert entries[0] == (START, 1.0)  # start:0.0 dropped, the oldest
    assert entries[-1] == (START, 999.0)


def test_the_history_keeps_the_newest_entries_that_fit_a_tag_value() -> None:
    tags: dict[str, str] = {}
    for n in range(HISTORY_SIZE + 5):
        tags[HISTORY_TAG] = add_to_history(tags, V1, 10000 + n + 0.5)
    value = tags[HISTORY_TAG]
    # "v1-resume:100nn.5" is 17 characters: 14 entries and 13 spaces make 251, 15 would make 269.
    assert len(value) == 251
    entries = parse_history(tags)
    assert [seconds for _, seconds in entries] == [10000 + n + 0.5 for n in range(11, 25)]


@pytest.mark.parametrize("kind", list(WakeKind))
def test_every_value_is_a_valid_tag_value_even_for_a_huge_sample(kind: WakeKind) -> None:
    tags: dict[str, str] = {}
    for seconds in [0, 0.04, 15.25, 1e6, 1e300, *range(30)]:
        tags[HISTORY_TAG] = add_to_history(tags, kind, seconds)
        assert TAG_VALUE.fullmatch(tags[HISTORY_TAG]), tags[HISTORY_TAG]


def test_a_huge_sample_is_written_as_a_day() -> None:
    assert add_to_history({}, START, 1e300) == "start:86400.0"


@pytest.mark.parametrize("seconds", [-0.1, math.nan, math.inf, -math.inf, True, "12", None])
def test_a_sample_that_is_not_a_duration_is_refused(seconds: Any) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        add_to_history({}, V2, seconds)
    assert caught.value.parameter == "seconds"
    assert "give" in str(caught.value)


# --- the lead -------------------------------------------------------------------------------


def test_a_set_lead_is_used_as_set() -> None:
    assert lead(set_seconds=90, tags=history("v2-resume:200.0")) == Lead(90.0, "set: 90 s")
    assert lead(set_seconds=42.5).basis == "set: 42.5 s"


@pytest.mark.parametrize("value", [0, -5, math.nan, math.inf, True, "90"])
def test_a_set_lead_that_is_not_positive_seconds_is_refused_naming_the_fix(value: Any) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        lead(set_seconds=value)
    message = str(caught.value)
    assert caught.value.parameter == "lead_time"
    assert f"invalid lead_time={value!r}" in message
    assert "seconds > 0" in message and "leave it unset" in message


@pytest.mark.parametrize("kind", [V2, V1, START])
def test_fewer_than_the_minimum_samples_of_the_kind_use_the_default(kind: WakeKind) -> None:
    other = V1 if kind is V2 else V2
    tags = history(*[f"{kind.value}:5.0"] * (MIN_SAMPLES - 1), *[f"{other.value}:5.0"] * 10)
    assert lead(kind, tags) == Lead(
        DEFAULT_LEAD[kind], f"default for {kind.value} (fewer than {MIN_SAMPLES} resumes recorded)"
    )


def test_three_samples_are_enough_and_their_p90_is_the_largest() -> None:
    # Nearest rank: ceil(0.9 * 3) = 3rd of [12, 14, 31.2]; margin max(10, 7.8) = 10.
    result = lead(V2, history("v2-resume:14.0", "v2-resume:31.2", "start:400.0", "v2-resume:12.0"))
    assert result.seconds == pytest.approx(41.2)
    assert result.basis == "learned: p90 of 3 v2-resume resumes (31.2 s; max 31.2 s) + 10 s margin"


def test_the_p90_of_ten_samples_is_the_ninth_and_a_quarter_margin_applies_above_40_s() -> None:
    samples = [40, 41, 42, 43, 44, 45, 46, 47, 48, 100]
    result = lead(START, history(*(f"start:{s}.0" for s in reversed(samples))))
    # ceil(0.9 * 10) = 9th smallest = 48; margin max(10, 12) = 12.
    assert result.seconds == pytest.approx(60.0)
    assert result.basis == "learned: p90 of 10 start resumes (48 s; max 100 s) + 12 s margin"


def test_the_p90_of_twenty_samples_is_the_eighteenth() -> None:
    samples = [float(n) for n in range(1, 21)]  # ceil(0.9 * 20) = 18
    tags = {HISTORY_TAG: " ".join(f"start:{s:.1f}" for s in samples)}
    assert lead(START, tags).seconds == pytest.approx(18.0 + 10.0)


def test_a_learned_lead_is_capped_to_the_auto_pause_and_says_so() -> None:
    tags = history("v2-resume:250.0", "v2-resume:260.0", "v2-resume:280.0")
    result = lead(V2, tags, seconds_until_auto_pause=300)
    assert result.seconds == 300.0
    assert result.basis.startswith("learned: p90 of 3 v2-resume resumes (280 s; max 280 s) + 70 s margin")
    assert "capped to 300 s, the cluster's SecondsUntilAutoPause" in result.basis


def test_the_auto_pause_does_not_cap_a_start() -> None:
    tags = history("start:250.0", "start:260.0", "start:280.0")
    assert lead(START, tags, seconds_until_auto_pause=300).seconds == 350.0


def test_an_unknown_auto_pause_caps_nothing() -> None:
    tags = history("v1-resume:250.0", "v1-resume:260.0", "v1-resume:280.0")
    assert lead(V1, tags, seconds_until_auto_pause=None).seconds == 350.0


@pytest.mark.parametrize("kind", [V2, V1])
def test_a_set_lead_longer_than_the_auto_pause_is_refused_naming_both_fixes(kind: WakeKind) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        lead(kind, set_seconds=420, seconds_until_auto_pause=300)
    message = str(caught.value)
    assert caught.value.parameter == "lead_time"
    assert "invalid lead_time=420" in message
    assert "300 s" in message and "SecondsUntilAutoPause" in message
    assert "a lead of at most 300 s" in message
    assert "raise the cluster's SecondsUntilAutoPause to at least 420" in message


def test_a_set_lead_up_to_the_auto_pause_is_accepted_and_a_start_ignores_it() -> None:
    assert lead(V2, set_seconds=300, seconds_until_auto_pause=300).seconds == 300.0
    assert lead(START, set_seconds=1200, seconds_until_auto_pause=300).seconds == 1200.0


@pytest.mark.parametrize("set_seconds", [None, 1200.0])
def test_every_lead_is_capped_to_how_far_ahead_the_pre_wake_starts(set_seconds: float | None) -> None:
    result = lead(START, set_seconds=set_seconds, max_seconds=600)
    assert result.seconds == 600.0
    assert result.basis.endswith("; capped to 600 s (the pre-wake starts at most that far ahead of the run)")


def test_a_lead_within_the_caps_is_not_said_to_be_capped() -> None:
    result = lead(V2, seconds_until_auto_pause=300, max_seconds=60)
    assert result == Lead(60.0, "default for v2-resume (fewer than 3 resumes recorded)")


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf])
def test_a_max_seconds_that_is_not_positive_is_refused(value: float) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        lead(max_seconds=value)
    assert caught.value.parameter == "max_seconds"


def test_the_lead_goes_to_xcom_as_a_dict() -> None:
    assert Lead(90.0, "set: 90 s").as_dict() == {"seconds": 90.0, "basis": "set: 90 s"}


def test_warm_seconds_is_positive_when_ready_before_the_start_and_negative_when_late() -> None:
    assert warm_seconds(ready_at=1000.0, run_start=1045.5) == 45.5
    assert warm_seconds(ready_at=1050.0, run_start=1045.0) == -5.0


def test_the_refusals_and_bases_use_no_airflow_words() -> None:
    texts = [
        lead(V2, history(*["v2-resume:280.0"] * 3), seconds_until_auto_pause=300, max_seconds=200).basis,
        lead(START, max_seconds=600).basis,
    ]
    for bad in [{"set_seconds": -1.0}, {"set_seconds": 900.0, "seconds_until_auto_pause": 300}]:
        with pytest.raises(InvalidParameterError) as caught:
            lead(V2, **bad)  # type: ignore[arg-type]
        texts.append(str(caught.value))
    assert [airflow_words_in(text) for text in texts] == [[]] * len(texts)
