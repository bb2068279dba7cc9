"""plan_wake for every row of the decision table, and wake_cluster against a scripted client."""

from __future__ import annotations

import asyncio
import random

import pytest
from core_fakes import (
    ScriptedDataApi,
    ScriptedRds,
    aws_error,
    data_api_error,
    provisioned_description,
    v1_description,
    v2_description,
)

from airflow_aurora_wake.core.cluster import classify_cluster
from airflow_aurora_wake.core.errors import (
    ClusterNotFoundError,
    ClusterStateError,
    DataApiNotEnabledError,
    DatabaseConfigurationError,
    InvalidParameterError,
    TransientError,
)
from airflow_aurora_wake.core.probes import DatabaseTarget
from airflow_aurora_wake.core.rds import RdsCalls
from airflow_aurora_wake.core.wake import WakeAction, WakeOptions, plan_wake, wake_cluster

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:sales-login-AbCdEf"
PG_TARGET = DatabaseTarget(engine="postgresql", host="127.0.0.1", port=1, user="app", password="pw")


# --- plan_wake: the decision table ------------------------------------------------------------


def test_v1_paused_modifies_capacity_to_the_minimum_valid() -> None:
    plan = plan_wake(
        classify_cluster(v1_description(capacity=0, min_capacity=1, max_capacity=16)), WakeOptions()
    )
    assert plan.action is WakeAction.MODIFY_CAPACITY
    assert plan.capacity == 1
    assert (
        plan.options.seconds_before_timeout == 300 and plan.options.timeout_action == "RollbackCapacityChange"
    )


def test_v1_postgresql_minimum_respects_the_engine_values() -> None:
    snapshot = classify_cluster(
        v1_description(engine="aurora-postgresql", capacity=0, min_capacity=2, max_capacity=64)
    )
    assert plan_wake(snapshot, WakeOptions()).capacity == 2
    snapshot = classify_cluster(
        v1_description(engine="aurora-postgresql", capacity=0, min_capacity=5, max_capacity=64)
    )
    assert plan_wake(snapshot, WakeOptions()).capacity == 8


def test_v1_given_capacity_and_options_pass_through() -> None:
    options = WakeOptions(capacity=4, seconds_before_timeout=60, timeout_action="ForceApplyCapacityChange")
    plan = plan_wake(classify_cluster(v1_description(capacity=0)), options)
    assert (plan.capacity, plan.options.seconds_before_timeout, plan.options.timeout_action) == (
        4,
        60,
        "ForceApplyCapacityChange",
    )


def test_v1_capacity_outside_the_cluster_range_fails_before_waiting() -> None:
    with pytest.raises(InvalidParameterError, match="scales between 1 and 16"):
        plan_wake(classify_cluster(v1_description(capacity=0, max_capacity=16)), WakeOptions(capacity=32))
    with pytest.raises(InvalidParameterError, match="Aurora postgresql"):
        plan_wake(
            classify_cluster(v1_description(engine="aurora-postgresql", capacity=0)), WakeOptions(capacity=1)
        )


def test_v1_running_needs_nothing() -> None:
    assert plan_wake(classify_cluster(v1_description(capacity=4)), WakeOptions()).action is WakeAction.NONE


def test_v2_auto_pause_without_nudge_leaves_it_to_the_probe() -> None:
    plan = plan_wake(classify_cluster(v2_description(min_capacity=0)), WakeOptions())
    assert plan.action is WakeAction.PROBE_WILL_WAKE
    assert "probe" in plan.detail


def test_v2_auto_pause_with_target_nudges_by_connection() -> None:
    plan = plan_wake(classify_cluster(v2_description(min_capacity=0)), WakeOptions(nudge_target=PG_TARGET))
    assert plan.action is WakeAction.NUDGE_CONNECTION and plan.options.nudge_target is PG_TARGET


def test_v2_auto_pause_with_secret_nudges_by_data_api() -> None:
    options = WakeOptions(nudge_target=PG_TARGET, data_api_secret_arn=SECRET, database="app")
    plan = plan_wake(classify_cluster(v2_description(min_capacity=0)), options)
    assert plan.action is WakeAction.NUDGE_DATA_API and plan.options.data_api_secret_arn == SECRET


def test_nudge_target_engine_must_match_the_cluster() -> None:
    mysql_target = DatabaseTarget(engine="mysql", host="h", port=3306, user="u")
    with pytest.raises(
        DatabaseConfigurationError, match="is for mysql but DB cluster 'sales' runs 'aurora-postgresql'"
    ):
        plan_wake(classify_cluster(v2_description(min_capacity=0)), WakeOptions(nudge_target=mysql_target))


@pytest.mark.parametrize(
    "description",
    [v2_description(min_capacity=0.5), provisioned_description()],
    ids=["v2-no-pause", "provisioned"],
)
def test_always_on_clusters_need_nothing(description: dict[str, object]) -> None:
    assert plan_wake(classify_cluster(description), WakeOptions()).action is WakeAction.NONE


def test_stopped_is_started_when_allowed() -> None:
    plan = plan_wake(classify_cluster(provisioned_description(status="stopped")), WakeOptions())
    assert plan.action is WakeAction.START


def test_stopped_without_start_if_stopped_fails_clearly() -> None:
    with pytest.raises(ClusterStateError, match=r"asked not to start it: start it \(StartDBCluster\)"):
        plan_wake(
            classify_cluster(provisioned_description(status="stopped")), WakeOptions(start_if_stopped=False)
        )


def test_starting_is_already_waking() -> None:
    plan = plan_wake(classify_cluster(v2_description(status="starting")), WakeOptions())
    assert plan.action is WakeAction.ALREADY_WAKING


@pytest.mark.parametrize(
    "status",
    ["stopping", "deleting", "failed", "inaccessible-encryption-credentials", "incompatible-network"],
)
def test_non_recoverable_states_fail_naming_the_state(status: str) -> None:
    with pytest.raises(ClusterStateError, match=f"'{status}'"):
        plan_wake(classify_cluster(v2_description(status=status)), WakeOptions())


def test_wake_options_validate() -> None:
    with pytest.raises(InvalidParameterError, match="seconds_before_timeout"):
        WakeOptions(seconds_before_timeout=5)
    with pytest.raises(InvalidParameterError, match="timeout_action"):
        WakeOptions(timeout_action="Rollback")
    with pytest.raises(InvalidParameterError, match="start_if_stopped"):
        WakeOptions(start_if_stopped="no")  # type: ignore[arg-type]


# --- wake_cluster -------------------------------------------------------------------------------


async def test_modify_capacity_is_sent_with_the_plan() -> None:
    rds = ScriptedRds([v1_description(capacity=0)])
    calls = RdsCalls()
    result = await wake_cluster("legacy", WakeOptions(), rds_client=rds, calls=calls)
    assert rds.modify_calls == [
        {
            "DBClusterIdentifier": "legacy",
            "Capacity": 1,
            "SecondsBeforeTimeout": 300,
            "TimeoutAction": "RollbackCapacityChange",
        }
    ]
    assert result.action is WakeAction.MODIFY_CAPACITY
    # The plan's describe, and the check right before asking.
    assert calls.as_dict() == {"DescribeDBClusters": 2, "ModifyCurrentDBClusterCapacity": 1}
    xcom = result.as_xcom()
    assert set(xcom) == {
        "db_cluster_identifier",
        "kind",
        "engine",
        "status",
        "action",
        "detail",
        "requested_at",
    }
    assert xcom["kind"] == "serverless-v1" and xcom["action"] == "modify-capacity"


@pytest.mark.parametrize(
    "now",
    [v1_description(capacity=8), v1_description(capacity=0, status="scaling-capacity")],
    ids=["awake-and-scaled-up", "scaling"],
)
async def test_no_capacity_request_to_a_cluster_that_woke_since_the_plan(now: dict[str, object]) -> None:
    # Another run's request (or a connection) woke the cluster between the plan's describe and
    # the request: asking now could scale an awake, scaled-up cluster down.
    rds = ScriptedRds([v1_description(capacity=0), now])
    result = await wake_cluster("legacy", WakeOptions(), rds_client=rds)
    assert result.action is WakeAction.ALREADY_WAKING
    assert rds.modify_calls == []
    assert "no capacity request sent" in result.detail


async def test_a_throttled_check_before_asking_lets_the_plan_stand() -> None:
    # The check is one try: throttling must not spend the wake's budget on it.
    throttled = aws_error("Throttling", "Rate exceeded", operation="DescribeDBClusters")
    rds = ScriptedRds([v1_description(capacity=0), throttled, v1_description(capacity=0)])
    result = await wake_cluster("legacy", WakeOptions(), rds_client=rds)
    assert result.action is WakeAction.MODIFY_CAPACITY
    assert len(rds.modify_calls) == 1 and len(rds.describe_times) == 2


async def test_invalid_state_from_modify_means_already_waking() -> None:
    rds = ScriptedRds([v1_description(capacity=0)])
    rds.modify_answers = [aws_error("InvalidDBClusterStateFault", "scaling in progress")]
    result = await wake_cluster("legacy", WakeOptions(), rds_client=rds)
    assert result.action is WakeAction.ALREADY_WAKING


async def test_invalid_state_from_start_means_already_starting() -> None:
    rds = ScriptedRds([provisioned_description(status="stopped")])
    rds.start_answers = [
        aws_error("InvalidDBClusterStateFault", "already starting", operation="StartDBCluster")
    ]
    result = await wake_cluster("orders", WakeOptions(), rds_client=rds)
    assert result.action is WakeAction.ALREADY_WAKING and rds.start_calls == ["orders"]


async def test_many_concurrent_wakers_all_succeed() -> None:
    rds = ScriptedRds([provisioned_description(status="stopped")])
    rds.start_answers = [None] + [aws_error("InvalidDBClusterStateFault", "starting") for _ in range(49)]
    results = await asyncio.gather(
        *(wake_cluster("orders", WakeOptions(), rds_client=rds) for _ in range(50))
    )
    actions = sorted(result.action.value for result in results)
    assert actions.count("start-db-cluster") == 1 and actions.count("already-waking") == 49


async def test_throttled_start_is_retried_then_succeeds() -> None:
    rds = ScriptedRds([provisioned_description(status="stopped")])
    rds.start_answers = [
        aws_error("Throttling", "Rate exceeded"),
        aws_error("Throttling", "Rate exceeded"),
        None,
    ]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = await wake_cluster("orders", WakeOptions(), rds_client=rds, sleep=sleep, rng=random.Random(3))
    assert result.action is WakeAction.START and len(rds.start_calls) == 3
    assert len(slept) == 2 and all(0 <= seconds <= 20 for seconds in slept)


async def test_throttling_until_the_retry_budget_ends_raises_transient_error() -> None:
    rds = ScriptedRds([aws_error("Throttling", "Rate exceeded")])
    now = [1_700_000_000.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(TransientError, match="Throttling"):
        await wake_cluster(
            "orders", WakeOptions(), rds_client=rds, sleep=sleep, clock=lambda: now[0], retry_seconds=30
        )
    assert now[0] - 1_700_000_000.0 >= 30


async def test_unknown_cluster_fails_at_once() -> None:
    rds = ScriptedRds([aws_error("DBClusterNotFoundFault", "not found", status=404)])
    with pytest.raises(ClusterNotFoundError, match=r"'nope'.*us-west-2"):
        await wake_cluster("nope", WakeOptions(), rds_client=rds, region_name="us-west-2")
    assert len(rds.describe_times) == 1


async def test_data_api_nudge_resuming_is_success() -> None:
    data_api = ScriptedDataApi()
    data_api.errors = [data_api_error("DatabaseResumingException", "Database is resuming")]
    rds = ScriptedRds([v2_description(min_capacity=0)])
    result = await wake_cluster(
        "sales",
        WakeOptions(data_api_secret_arn=SECRET, database="app"),
        rds_client=rds,
        rds_data_client=data_api,
    )
    assert result.action is WakeAction.NUDGE_DATA_API and "resume under way" in result.detail
    assert data_api.calls[0]["sql"] == "SELECT 1" and data_api.calls[0]["secretArn"] == SECRET
    assert len(data_api.calls) == 1  # a nudge never waits for the resume


async def test_data_api_nudge_not_enabled_fails_with_advice() -> None:
    data_api = ScriptedDataApi()
    data_api.errors = [data_api_error("HttpEndpointNotEnabledException", "HttpEndpoint is not enabled")]
    rds = ScriptedRds([v2_description(min_capacity=0)])
    with pytest.raises(DataApiNotEnabledError, match="over a connection instead of the Data API"):
        await wake_cluster(
            "sales", WakeOptions(data_api_secret_arn=SECRET), rds_client=rds, rds_data_client=data_api
        )


async def test_connection_nudge_holds_then_gives_up() -> None:
    held = asyncio.Event()
    closed = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.set()
        await reader.read()  # returns at EOF: the client gave up and closed
        closed.set()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = DatabaseTarget(engine="postgresql", host="127.0.0.1", port=port, user="app", password="pw")
    try:
        result = await wake_cluster(
            "sales",
            WakeOptions(nudge_target=target, nudge_hold_seconds=0.5),
            rds_client=ScriptedRds([v2_description(min_capacity=0)]),
        )
        assert result.action is WakeAction.NUDGE_CONNECTION
        assert "held open 0.5 s and given up" in result.detail
        assert held.is_set()
        await asyncio.wait_for(closed.wait(), 10)
    finally:
        server.close()
        await server.wait_closed()


async def test_wake_cluster_does_nothing_for_an_awake_cluster() -> None:
    rds = ScriptedRds([provisioned_description()])
    result = await wake_cluster("orders", WakeOptions(), rds_client=rds)
    assert result.action is WakeAction.NONE and not rds.modify_calls and not rds.start_calls
