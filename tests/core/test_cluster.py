"""classify_cluster: the three kinds, statuses, and malformed shapes."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from core_fakes import provisioned_description, v1_description, v2_description
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_aurora_wake.core.cluster import (
    ClusterKind,
    StatusCategory,
    classify_cluster,
    engine_family,
    status_category,
)
from airflow_aurora_wake.core.errors import ClusterDescriptionError


def test_v2_with_auto_pause_may_be_paused_although_available() -> None:
    snapshot = classify_cluster(v2_description(min_capacity=0))
    assert snapshot.kind is ClusterKind.SERVERLESS_V2
    assert snapshot.category is StatusCategory.AVAILABLE
    assert snapshot.auto_pause is True
    assert snapshot.may_be_paused is True
    assert snapshot.capacity is None
    assert snapshot.seconds_until_auto_pause == 300
    assert snapshot.engine_family == "postgresql"
    assert snapshot.shows_ready is True  # RDS cannot tell a paused v2 cluster


def test_v2_without_auto_pause_is_never_paused() -> None:
    snapshot = classify_cluster(v2_description(min_capacity=0.5))
    assert snapshot.kind is ClusterKind.SERVERLESS_V2
    assert snapshot.auto_pause is False
    assert snapshot.may_be_paused is False


def test_v1_at_capacity_zero_is_paused_and_not_ready() -> None:
    snapshot = classify_cluster(v1_description(capacity=0))
    assert snapshot.kind is ClusterKind.SERVERLESS_V1
    assert snapshot.capacity == 0
    assert snapshot.min_capacity == 1 and snapshot.max_capacity == 16
    assert snapshot.may_be_paused is True
    assert snapshot.shows_ready is False


def test_v1_with_capacity_shows_ready() -> None:
    snapshot = classify_cluster(v1_description(capacity=2))
    assert snapshot.may_be_paused is False
    assert snapshot.shows_ready is True


def test_provisioned_cluster() -> None:
    snapshot = classify_cluster(provisioned_description())
    assert snapshot.kind is ClusterKind.PROVISIONED
    assert snapshot.may_be_paused is False
    assert snapshot.http_endpoint_enabled is False


@pytest.mark.parametrize(
    ("status", "category"),
    [
        ("available", StatusCategory.AVAILABLE),
        ("backing-up", StatusCategory.AVAILABLE),
        ("modifying", StatusCategory.AVAILABLE),
        ("scaling-capacity", StatusCategory.AVAILABLE),
        ("starting", StatusCategory.WAKING),
        ("creating", StatusCategory.WAKING),
        ("rebooting", StatusCategory.WAKING),
        ("stopped", StatusCategory.STOPPED),
        ("stopping", StatusCategory.FAILED),
        ("deleting", StatusCategory.FAILED),
        ("failed", StatusCategory.FAILED),
        ("inaccessible-encryption-credentials", StatusCategory.FAILED),
        ("something-new-from-aws", StatusCategory.FAILED),
        ("Available", StatusCategory.AVAILABLE),
    ],
)
def test_status_categories(status: str, category: StatusCategory) -> None:
    assert status_category(status) is category
    assert classify_cluster(v2_description(status=status)).category is category


def test_stopped_cluster() -> None:
    snapshot = classify_cluster(provisioned_description(status="stopped"))
    assert snapshot.category is StatusCategory.STOPPED
    assert snapshot.shows_ready is False


@pytest.mark.parametrize(
    ("engine", "family"),
    [
        ("aurora-postgresql", "postgresql"),
        ("aurora-mysql", "mysql"),
        ("aurora", "mysql"),
        ("postgres", "postgresql"),
        ("docdb", None),
    ],
)
def test_engine_family(engine: str, family: str | None) -> None:
    assert engine_family(engine) == family


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("DBClusterIdentifier"), "DBClusterIdentifier is missing"),
        (lambda d: d.pop("Status"), "Status is missing"),
        (lambda d: d.update(Engine=7), "Engine must be"),
        (lambda d: d.update(Port="5432"), "Port must be a number"),
        (lambda d: d.update(Port=70000), "Port must be 1..65535"),
        (lambda d: d.update(ServerlessV2ScalingConfiguration=[]), "must be an object"),
        (lambda d: d["ServerlessV2ScalingConfiguration"].update(MinCapacity=True), "must be a number"),
        (lambda d: d["ServerlessV2ScalingConfiguration"].update(MinCapacity=float("nan")), "finite"),
        (lambda d: d["ServerlessV2ScalingConfiguration"].update(MinCapacity=-1), ">= 0"),
        (lambda d: d["ServerlessV2ScalingConfiguration"].update(MinCapacity=16), "exceeds MaxCapacity"),
        (lambda d: d.update(HttpEndpointEnabled="yes"), "must be true or false"),
    ],
)
def test_malformed_shapes_raise_cluster_description_error(mutate: Any, needle: str) -> None:
    description = v2_description()
    mutate(description)
    with pytest.raises(ClusterDescriptionError, match=needle):
        classify_cluster(description)


def test_not_a_mapping() -> None:
    with pytest.raises(ClusterDescriptionError, match="not an object"):
        classify_cluster(["sales"])  # type: ignore[arg-type]


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
_KEYS = st.sampled_from(
    [
        "DBClusterIdentifier",
        "DBClusterArn",
        "Engine",
        "EngineMode",
        "Status",
        "Capacity",
        "ScalingConfigurationInfo",
        "ServerlessV2ScalingConfiguration",
        "Endpoint",
        "ReaderEndpoint",
        "Port",
        "HttpEndpointEnabled",
        "IAMDatabaseAuthenticationEnabled",
    ]
)
_SCALING = st.dictionaries(
    st.sampled_from(["MinCapacity", "MaxCapacity", "AutoPause", "SecondsUntilAutoPause"]),
    _JSONISH,
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from([v1_description(), v2_description(), provisioned_description(), {}]),
    overrides=st.dictionaries(_KEYS, _JSONISH | _SCALING, max_size=5),
    drops=st.lists(_KEYS, max_size=3),
)
def test_any_shape_gives_a_snapshot_or_a_description_error(
    base: dict[str, Any], overrides: dict[str, Any], drops: list[str]
) -> None:
    description = {**base, **overrides}
    for key in drops:
        description.pop(key, None)
    try:
        snapshot = classify_cluster(description)
    except ClusterDescriptionError:
        return
    assert isinstance(snapshot.identifier, str) and snapshot.identifier
    assert snapshot.kind in set(ClusterKind)
    assert isinstance(snapshot.category, StatusCategory)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6) | st.integers(), _JSONISH, max_size=6))
def test_arbitrary_dicts_never_raise_other_exceptions(description: dict[Any, Any]) -> None:
    with contextlib.suppress(ClusterDescriptionError):
        classify_cluster(description)
