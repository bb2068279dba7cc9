"""Fuzzing the cluster classifier with every ``DBCluster`` shape botocore's RDS model allows.

The strategy is built from botocore's own service model (``shape_for('DBCluster')``): every
member optional (so fields go missing), lists possibly empty, strings arbitrary (so states and
engine modes are unknown), with the fields the classifier reads biased towards real values so
the interesting paths are reached too. ``classify_cluster`` must return a snapshot (whose
properties work) or raise ``ClusterDescriptionError``, and ``describe_cluster`` must turn any
answer into a snapshot or a core error: never another exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_aurora_wake.core.cluster import ClusterSnapshot, classify_cluster
from airflow_aurora_wake.core.errors import AuroraWakeError, ClusterDescriptionError
from airflow_aurora_wake.core.rds import describe_cluster

pytestmark = [pytest.mark.faults]

FUZZ = settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
MODEL = botocore.session.get_session().get_service_model("rds")

#: Realistic values for the members the classifier reads, mixed with arbitrary ones.
INTERESTING: dict[str, st.SearchStrategy[Any]] = {
    "Status": st.sampled_from(
        [
            "available",
            "stopped",
            "starting",
            "stopping",
            "deleting",
            "failed",
            "resuming",
            "backing-up",
            "inaccessible-encryption-credentials",
            "Available",
            " available ",
            "",
        ]
    ),
    "EngineMode": st.sampled_from(
        ["provisioned", "serverless", "parallelquery", "global", "multimaster", ""]
    ),
    "Engine": st.sampled_from(["aurora-postgresql", "aurora-mysql", "aurora", "neptune", "docdb", ""]),
    "DBClusterIdentifier": st.sampled_from(["sales", "Sales-2", "x"]),
    "MinCapacity": st.sampled_from([0.0, 0.5, 1.0, 2.0, 64.0, 256.0]),
    "MaxCapacity": st.sampled_from([0.0, 1.0, 4.0, 128.0, 256.0]),
    "Capacity": st.sampled_from([0, 1, 2, 16, 384]),
    "Port": st.sampled_from([0, 3306, 5432, 65535, 65536]),
}


def _scalar(shape: Any) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "string":
        if shape.enum:
            return st.sampled_from(list(shape.enum)) | st.text(max_size=8)
        return st.text(max_size=12)
    if kind in ("integer", "long"):
        return st.integers(min_value=-(2**63), max_value=2**63)
    if kind in ("double", "float"):
        return st.floats(allow_nan=True, allow_infinity=True)
    if kind == "boolean":
        return st.booleans()
    if kind == "timestamp":
        return st.datetimes(timezones=st.just(UTC)) | st.just(datetime(1970, 1, 1))
    if kind == "blob":
        return st.binary(max_size=8)
    return st.none()


def strategy_for(shape: Any, depth: int = 0, name: str | None = None) -> st.SearchStrategy[Any]:
    """A strategy for any value botocore's model allows for ``shape`` (nesting bounded)."""
    base: st.SearchStrategy[Any]
    if shape.type_name == "structure":
        if depth > 3:
            return st.just({})
        optional = {
            member: strategy_for(member_shape, depth + 1, member)
            for member, member_shape in shape.members.items()
        }
        base = st.fixed_dictionaries({}, optional=optional)
    elif shape.type_name == "list":
        base = st.lists(strategy_for(shape.member, depth + 1), max_size=0 if depth > 3 else 3)
    elif shape.type_name == "map":
        base = st.dictionaries(st.text(max_size=5), strategy_for(shape.value, depth + 1), max_size=2)
    else:
        base = _scalar(shape)
    if name in INTERESTING:
        return INTERESTING[name] | base
    return base


DB_CLUSTER = strategy_for(MODEL.shape_for("DBCluster"))


def check_snapshot(snapshot: ClusterSnapshot) -> None:
    # Every property a waiter reads works, and the numbers are what the classifier promises.
    assert snapshot.category is not None
    assert isinstance(snapshot.may_be_paused, bool) and isinstance(snapshot.shows_ready, bool)
    assert snapshot.engine_family in (None, "postgresql", "mysql")
    for number in (snapshot.capacity, snapshot.min_capacity, snapshot.max_capacity):
        assert number is None or (math.isfinite(number) and number >= 0)
    assert snapshot.port is None or 0 < snapshot.port < 65536


@FUZZ
@given(DB_CLUSTER)
def test_any_modelled_description_gives_a_snapshot_or_a_clear_error(description: dict[str, Any]) -> None:
    try:
        snapshot = classify_cluster(description)
    except ClusterDescriptionError as error:
        assert "DescribeDBClusters" in str(error)
        return
    check_snapshot(snapshot)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(sorted(INTERESTING)),
        st.none()
        | st.integers()
        | st.text(max_size=4)
        | st.lists(st.integers(), max_size=2)
        | st.booleans()
        | st.floats(),
    )
)
def test_wrong_types_outside_the_model_give_a_clear_error_too(description: dict[str, Any]) -> None:
    with contextlib.suppress(ClusterDescriptionError):
        check_snapshot(classify_cluster(description))


class _Client:
    def __init__(self, response: Any) -> None:
        self.response = response

    async def describe_db_clusters(self, **_: Any) -> Any:
        return self.response


@FUZZ
@given(
    st.one_of(
        st.fixed_dictionaries({"DBClusters": st.lists(DB_CLUSTER, max_size=2)}),
        st.fixed_dictionaries({}, optional={"DBClusters": st.none() | st.text(max_size=3)}),
        st.none(),
    ),
    st.booleans(),
)
def test_describe_turns_any_answer_into_a_snapshot_or_a_core_error(response: Any, seen: bool) -> None:
    try:
        snapshot = asyncio.run(describe_cluster(_Client(response), "sales", seen=seen))
    except AuroraWakeError:
        return
    check_snapshot(snapshot)
