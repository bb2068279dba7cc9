"""The warm window's operators against the emulator: hold, release, sweep, and their bad input.

Each operator is executed as the task runner would, with the run's context; the cluster is read
back through ``DescribeDBClusters`` as any other holder would read it: its scaling, its tags.
The window run whole as Airflow setup and teardown tasks is tests/task_groups' subject.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import adapter_bad_input
import pytest
from adapter_bad_input import ARN, assert_rejected, build
from airflow_support import CLUSTER, EmulatedCluster, plant_hold, set_aws_connection

from airflow_aurora_wake.compat import DAG
from airflow_aurora_wake.core.errors import (
    AuroraWakeError,
    ClusterNotFoundError,
    ClusterStateError,
    InvalidParameterError,
)
from airflow_aurora_wake.core.hold import HOLD_TAG_PREFIX, HoldRequest
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec
from airflow_aurora_wake.operators.aurora_window import (
    AuroraServerlessHoldOperator,
    AuroraServerlessReleaseOperator,
    AuroraServerlessSweepHoldsOperator,
    window_holder,
)

pytestmark = [pytest.mark.emulator, pytest.mark.db]

quiet_emulator = adapter_bad_input.quiet_emulator
connections = adapter_bad_input.connections

DAG_ID = "warm_window_operators"
RUN_ID = "manual__2024-06-01T00:00:00+00:00"
HOUR = 3600.0
#: A paused v2 cluster's own scaling (the emulator's default), which every release gives back.
ORIGINAL = {"MinCapacity": 0.0, "MaxCapacity": 4.0, "SecondsUntilAutoPause": 300}
HOLD_XCOM = {
    "db_cluster_identifier",
    "kind",
    "action",
    "holder",
    "min_capacity",
    "since",
    "until",
    "scaling",
    "settled",
    "holds",
    "detail",
    "rds_calls",
}
RELEASE_XCOM = {
    "db_cluster_identifier",
    "holder",
    "released",
    "held_seconds",
    "min_capacity",
    "acu_hours",
    "scaling",
    "restored",
    "stopped",
    "holds",
    "detail",
    "rds_calls",
}


def run_context(run_id: str = RUN_ID) -> dict[str, Any]:
    """What the operators read of a task's context: the run id (the DAG id is the task's)."""
    return {"run_id": run_id}


def in_dag(cls: type, cluster: EmulatedCluster | None = None, **kwargs: Any) -> Any:
    """Build one of the operators as a task of the DAG ``DAG_ID``, for the emulated cluster."""
    if cluster is not None:
        kwargs.setdefault("db_cluster_identifier", cluster.identifier)
        kwargs.setdefault("aws_conn_id", cluster.aws_conn_id)
    with DAG(DAG_ID, schedule=None, start_date=datetime(2024, 1, 1)):
        return cls(task_id=kwargs.pop("task_id", cls.__name__), **kwargs)


def hold(cluster: EmulatedCluster, **kwargs: Any) -> AuroraServerlessHoldOperator:
    kwargs.setdefault("min_capacity", 2)
    task: AuroraServerlessHoldOperator = in_dag(AuroraServerlessHoldOperator, cluster, **kwargs)
    return task


def release(cluster: EmulatedCluster, **kwargs: Any) -> AuroraServerlessReleaseOperator:
    task: AuroraServerlessReleaseOperator = in_dag(AuroraServerlessReleaseOperator, cluster, **kwargs)
    return task


def hold_tags(cluster: EmulatedCluster, identifier: str | None = None) -> list[str]:
    described = cluster.emu.boto3_client("rds").describe_db_clusters(
        DBClusterIdentifier=identifier or cluster.identifier
    )["DBClusters"][0]
    return sorted(t["Key"] for t in described.get("TagList", []) if t["Key"].startswith(HOLD_TAG_PREFIX))


def scaling(cluster: EmulatedCluster, identifier: str | None = None) -> dict[str, Any]:
    described = cluster.emu.boto3_client("rds").describe_db_clusters(
        DBClusterIdentifier=identifier or cluster.identifier
    )["DBClusters"][0]
    return dict(described["ServerlessV2ScalingConfiguration"])


def writes(cluster: EmulatedCluster) -> dict[str, int]:
    """The RDS calls other than describes made on the cluster."""
    calls = dict(cluster.counters()["rds_calls"])
    calls.pop("DescribeDBClusters", None)
    return calls


# --------------------------------------------------------------------------- the holder
def test_the_holder_is_the_dag_id_and_a_digest_of_the_run_and_the_window() -> None:
    holder = window_holder("sales_etl", RUN_ID, "warm")
    prefix, digest = holder.split(".")
    assert prefix == "sales_etl"
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert window_holder("sales_etl", RUN_ID, "warm") == holder
    others = {
        window_holder("sales_etl", "manual__2024-06-02T00:00:00+00:00", "warm"),
        window_holder("sales_etl", RUN_ID, "warm_2"),
        window_holder("sales_etl2", RUN_ID, "warm"),
    }
    assert holder not in others and len(others) == 3


@pytest.mark.parametrize("dag_id", ["ä" * 300, "x" * 250, "dag with spaces", "a.b-c_d"])
def test_any_dag_id_gives_a_holder_a_tag_key_can_carry(dag_id: str) -> None:
    holder = window_holder(dag_id, RUN_ID, "warm")
    assert len(holder) <= 57  # a tag key is at most 128 characters, its prefix 17 of them
    assert holder.split(".")[-1] == window_holder(dag_id, RUN_ID, "warm").split(".")[-1]
    assert " " not in holder


def test_a_task_outside_a_dag_run_says_it_needs_one(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")
    with pytest.raises(AuroraWakeError, match="run it as a task of a DAG run"):
        hold(cluster).execute({})
    assert cluster.counters()["rds_calls"] == {}


# --------------------------------------------------------------------------- hold and release
def test_hold_resumes_a_paused_cluster_and_release_gives_back_its_scaling(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")
    holder = window_holder(DAG_ID, RUN_ID, "warm_window")

    held = hold(cluster, min_capacity=2, hold_for=timedelta(hours=1)).execute(run_context())

    assert set(held) == HOLD_XCOM
    assert (held["action"], held["holder"], held["settled"], held["holds"]) == ("hold", holder, True, 1)
    assert held["until"] - held["since"] == pytest.approx(HOUR, abs=1)
    assert scaling(cluster) == {"MinCapacity": 2.0, "MaxCapacity": 4.0}
    assert hold_tags(cluster) == [HOLD_TAG_PREFIX + holder]
    resume = next(e for e in cluster.emu.timeline(CLUSTER) if e.event == "resume-requested")
    assert resume.detail["cause"] == "modify-db-cluster"

    released = release(cluster).execute(run_context())

    assert set(released) == RELEASE_XCOM
    assert (released["holder"], released["released"], released["restored"]) == (holder, True, True)
    assert released["min_capacity"] == 2.0
    assert scaling(cluster) == ORIGINAL
    assert hold_tags(cluster) == []


def test_the_release_says_what_the_window_cost(
    emulated: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hold taken half an hour ago at 2 ACUs: about one ACU-hour, in the XCom and the log."""
    cluster = emulated(kind="serverless-v2", state="paused")
    holder = window_holder(DAG_ID, RUN_ID, "warm_window")
    plant_hold(
        cluster.emu, CLUSTER, HoldRequest(holder, min_capacity=2, hold_for=HOUR), since=time.time() - 1800
    )

    with caplog.at_level("INFO"):
        released = release(cluster).execute(run_context())

    assert released["held_seconds"] >= 1800
    assert released["acu_hours"] == pytest.approx(2.0 * released["held_seconds"] / 3600, abs=1e-3)
    assert released["acu_hours"] >= 1.0
    # Airflow 3 logs a task's lines to stdout, Airflow 2.11 to the logging handlers.
    logged = re.search(
        r"held 2 ACUs for ([\d.]+) min \(([\d.]+) ACU-hours\)", caplog.text + capsys.readouterr().out
    )
    assert logged is not None
    assert float(logged[1]) == pytest.approx(released["held_seconds"] / 60, abs=0.1)
    assert float(logged[2]) == pytest.approx(released["acu_hours"], abs=1e-3)
    assert scaling(cluster) == ORIGINAL


def test_holding_again_in_the_same_run_extends_the_same_hold(emulated: Any) -> None:
    """A cleared or re-run hold task: one tag, the same start, a later expiry."""
    cluster = emulated(kind="serverless-v2", state="paused")
    first = hold(cluster, hold_for=60).execute(run_context())
    again = hold(cluster, hold_for=HOUR).execute(run_context())
    assert again["holder"] == first["holder"]
    assert again["since"] == first["since"] and again["until"] > first["until"]
    assert hold_tags(cluster) == [HOLD_TAG_PREFIX + first["holder"]]
    release(cluster).execute(run_context())
    assert hold_tags(cluster) == []


@pytest.mark.parametrize("first_to_end", ["run", "window"])
def test_other_runs_and_windows_hold_apart_and_the_last_release_restores(
    emulated: Any, first_to_end: str
) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")
    other_run = "manual__2024-06-02T00:00:00+00:00"
    hold(cluster, min_capacity=2).execute(run_context())
    hold(cluster, min_capacity=4).execute(run_context(other_run))
    hold(cluster, min_capacity=8, max_capacity=8, window_id="big").execute(run_context())
    assert len(hold_tags(cluster)) == 3
    assert scaling(cluster) == {"MinCapacity": 8.0, "MaxCapacity": 8.0}

    if first_to_end == "window":
        release(cluster, window_id="big").execute(run_context())
        assert scaling(cluster) == {"MinCapacity": 4.0, "MaxCapacity": 4.0}
        release(cluster).execute(run_context(other_run))
    else:
        release(cluster).execute(run_context(other_run))
        assert scaling(cluster) == {"MinCapacity": 8.0, "MaxCapacity": 8.0}
        release(cluster, window_id="big").execute(run_context())
    assert scaling(cluster) == {"MinCapacity": 2.0, "MaxCapacity": 4.0}
    last = release(cluster).execute(run_context())
    assert (last["restored"], last["holds"]) == (True, 0)
    assert scaling(cluster) == ORIGINAL
    assert hold_tags(cluster) == []


def test_a_provisioned_cluster_has_nothing_to_hold_and_its_release_succeeds(emulated: Any) -> None:
    cluster = emulated(kind="provisioned", state="available")
    held = hold(cluster).execute(run_context())
    assert (held["action"], held["kind"], held["scaling"]) == ("none", "provisioned", None)
    released = release(cluster).execute(run_context())
    assert (released["released"], released["acu_hours"]) == (False, 0.0)
    assert writes(cluster) == {}


def test_a_v1_cluster_is_held_with_a_capacity_request(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v1", state="paused")
    held = hold(cluster, min_capacity=4).execute(run_context())
    assert (held["kind"], held["action"]) == ("serverless-v1", "hold")
    assert writes(cluster)["ModifyCurrentDBClusterCapacity"] == 1
    released = release(cluster).execute(run_context())
    assert (released["released"], released["min_capacity"]) == (True, 4.0)
    assert hold_tags(cluster) == []


def test_a_stopped_cluster_is_not_started_when_asked_not_to(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="stopped")
    with pytest.raises(ClusterStateError, match="stopped"):
        hold(cluster, start_if_stopped=False).execute(run_context())
    assert writes(cluster) == {}
    assert hold_tags(cluster) == []


def test_a_release_never_stops_a_cluster_the_window_did_not_start(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="available")
    hold(cluster).execute(run_context())
    released = release(cluster, stop_if_started=True).execute(run_context())
    assert released["stopped"] is False
    assert "StopDBCluster" not in writes(cluster)


def test_a_floor_above_the_clusters_maximum_fails_before_anything_changes(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")
    with pytest.raises(InvalidParameterError, match=r"at most 4 ACUs.*max_capacity >= 8") as excinfo:
        hold(cluster, min_capacity=8).execute(run_context())
    assert excinfo.value.parameter == "min_capacity"
    assert writes(cluster) == {}
    assert hold_tags(cluster) == []
    assert scaling(cluster) == ORIGINAL


def test_a_floor_above_the_maximum_is_held_with_max_capacity(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")
    hold(cluster, min_capacity=8, max_capacity=16).execute(run_context())
    assert scaling(cluster) == {"MinCapacity": 8.0, "MaxCapacity": 16.0}
    release(cluster).execute(run_context())
    assert scaling(cluster) == ORIGINAL


def test_unknown_cluster_names_identifier_and_region(emulated: Any) -> None:
    cluster = emulated()
    with pytest.raises(ClusterNotFoundError, match=r"'no-such-cluster'.*us-east-1"):
        hold(cluster, db_cluster_identifier="no-such-cluster").execute(run_context())


def test_a_cluster_arn_and_a_template_name_the_same_hold(emulated: Any) -> None:
    cluster = emulated(kind="serverless-v2", state="paused")
    arn = cluster.emu.cluster(CLUSTER).arn
    held = hold(cluster, db_cluster_identifier=arn).execute(run_context())
    templated = release(cluster, db_cluster_identifier="{{ params.cluster }}")
    templated.render_template_fields({"params": {"cluster": CLUSTER}})
    released = templated.execute(run_context())
    assert released["db_cluster_identifier"] == held["db_cluster_identifier"] == CLUSTER
    assert released["holder"] == held["holder"]
    assert released["released"] is True


def test_template_fields_are_the_cluster_and_the_aws_parameters() -> None:
    aws = {"aws_conn_id", "region_name", "verify"}
    assert set(AuroraServerlessHoldOperator.template_fields) == {"db_cluster_identifier", *aws}
    assert set(AuroraServerlessReleaseOperator.template_fields) == {"db_cluster_identifier", *aws}
    assert set(AuroraServerlessSweepHoldsOperator.template_fields) == {"db_cluster_identifiers", *aws}


# --------------------------------------------------------------------------- sweep
@pytest.fixture
def two_clusters(emulated: Any) -> EmulatedCluster:
    """The paused v2 clusters ``sales`` and ``orders`` of one emulator."""
    cluster: EmulatedCluster = emulated(kind="serverless-v2", state="paused")
    cluster.emu.add_cluster(ClusterSpec("orders", state="paused"))
    return cluster


def died(holder: str) -> HoldRequest:
    """A hold whose run died: taken two hours ago for one hour, never released."""
    return HoldRequest(holder, min_capacity=2, hold_for=HOUR)


@pytest.mark.parametrize("clusters", ["sales, orders", ["sales", "orders"], "{{ params.clusters }}"])
def test_sweep_removes_expired_holds_and_gives_the_scaling_back(
    two_clusters: EmulatedCluster, clusters: Any
) -> None:
    emu = two_clusters.emu
    for name in ("sales", "orders"):
        plant_hold(emu, name, died("died"), since=time.time() - 2 * HOUR)
        assert scaling(two_clusters, name)["MinCapacity"] == 2.0  # the dead run's floor stays
    sweep = in_dag(
        AuroraServerlessSweepHoldsOperator,
        db_cluster_identifiers=clusters,
        aws_conn_id=two_clusters.aws_conn_id,
    )
    sweep.render_template_fields({"params": {"clusters": "sales orders"}})

    results = sweep.execute(run_context())

    assert [r["db_cluster_identifier"] for r in results] == ["sales", "orders"]
    assert all(set(r) == RELEASE_XCOM for r in results)
    assert [(r["released"], r["restored"], r["holds"]) for r in results] == [(True, True, 0)] * 2
    for name in ("sales", "orders"):
        assert scaling(two_clusters, name) == ORIGINAL
        assert hold_tags(two_clusters, name) == []


def test_sweep_leaves_live_holds_alone(two_clusters: EmulatedCluster) -> None:
    hold(two_clusters, min_capacity=2).execute(run_context())
    plant_hold(two_clusters.emu, "sales", died("died"), since=time.time() - 2 * HOUR)
    sweep = in_dag(
        AuroraServerlessSweepHoldsOperator,
        db_cluster_identifiers="sales",
        aws_conn_id=two_clusters.aws_conn_id,
    )
    (result,) = sweep.execute(run_context())
    assert (result["released"], result["holds"], result["restored"]) == (True, 1, False)
    assert hold_tags(two_clusters) == [HOLD_TAG_PREFIX + window_holder(DAG_ID, RUN_ID, "warm_window")]
    assert scaling(two_clusters)["MinCapacity"] == 2.0


def test_sweep_goes_on_past_a_failing_cluster_then_fails(two_clusters: EmulatedCluster) -> None:
    plant_hold(two_clusters.emu, "orders", died("died"), since=time.time() - 2 * HOUR)
    sweep = in_dag(
        AuroraServerlessSweepHoldsOperator,
        db_cluster_identifiers=["gone", "orders"],
        aws_conn_id=two_clusters.aws_conn_id,
    )
    with pytest.raises(ClusterNotFoundError, match="'gone'"):
        sweep.execute(run_context())
    assert hold_tags(two_clusters, "orders") == []
    assert scaling(two_clusters, "orders") == ORIGINAL


def test_sweep_reaches_each_cluster_in_its_arns_region(
    monkeypatch: pytest.MonkeyPatch, postgres_server: Any
) -> None:
    with AuroraEmulator([ClusterSpec("west", region="eu-west-1"), ClusterSpec("east")]) as emu:
        set_aws_connection(monkeypatch, emu)
        west = emu.cluster("west").arn
        assert ":eu-west-1:" in west
        sweep = in_dag(
            AuroraServerlessSweepHoldsOperator,
            db_cluster_identifiers=[west, "east"],
            aws_conn_id="aws_emulator",
        )
        results = sweep.execute(run_context())
    assert [r["db_cluster_identifier"] for r in results] == ["west", "east"]


# --------------------------------------------------------------------------- bad input
HOLD_BASE = {
    "task_id": "hold",
    "db_cluster_identifier": "sales",
    "aws_conn_id": "aws_emulator",
    "min_capacity": 2,
}
HOLD_CASES = [
    ("min_capacity", 2.25, "direct"),
    ("min_capacity", 0, "direct"),
    ("min_capacity", 300, "direct"),
    ("min_capacity", "8", "direct"),
    ("min_capacity", True, "direct"),
    ("min_capacity", None, "direct"),
    ("max_capacity", 1, "direct"),
    ("max_capacity", 4.2, "direct"),
    ("hold_for", 0, "direct"),
    ("hold_for", -60, "direct"),
    ("hold_for", 2 * 86400, "direct"),
    ("hold_for", timedelta(days=2), "direct"),
    ("hold_for", timedelta(0), "direct"),
    ("hold_for", "2h", "direct"),
    ("hold_for", float("inf"), "direct"),
    ("start_if_stopped", "yes", "direct"),
    ("start_if_stopped", None, "direct"),
    ("window_id", "", "direct"),
    ("window_id", " warm", "direct"),
    ("window_id", 5, "direct"),
    ("window_id", None, "direct"),
    ("db_cluster_identifier", "", "direct"),
    ("db_cluster_identifier", 42, "direct"),
    ("db_cluster_identifier", "arn:aws:rds:us-east-1:123456789012:db:sales", "direct"),
    ("db_cluster_identifier", None, "template"),
    ("db_cluster_identifier", "", "template"),
    ("aws_conn_id", "no_such_aws_connection", "direct"),
    ("aws_conn_id", "aurora_db", "direct"),
    ("aws_conn_id", None, "template"),
    ("region_name", "Mars", "direct"),
    ("region_name", None, "template"),
    ("verify", "/no/such/ca-bundle.pem", "direct"),
    ("botocore_config", "retries=3", "direct"),
]
RELEASE_BASE = {"task_id": "release", "db_cluster_identifier": "sales", "aws_conn_id": "aws_emulator"}
RELEASE_CASES = [
    ("stop_if_started", "no", "direct"),
    ("stop_if_started", 1, "direct"),
    ("window_id", "", "direct"),
    ("window_id", ["warm"], "direct"),
    ("db_cluster_identifier", "bad_name!", "direct"),
    ("db_cluster_identifier", None, "template"),
    ("aws_conn_id", "no_such_aws_connection", "direct"),
]
SWEEP_BASE = {"task_id": "sweep", "db_cluster_identifiers": "sales", "aws_conn_id": "aws_emulator"}
SWEEP_CASES = [
    ("db_cluster_identifiers", "", "direct"),
    ("db_cluster_identifiers", " , ", "direct"),
    ("db_cluster_identifiers", [], "direct"),
    ("db_cluster_identifiers", 42, "direct"),
    ("db_cluster_identifiers", ["sales", ""], "direct"),
    ("db_cluster_identifiers", ["sales", 42], "direct"),
    ("db_cluster_identifiers", "sales bad_name!", "direct"),
    ("db_cluster_identifiers", None, "template"),
    ("db_cluster_identifiers", "", "template"),
    ("aws_conn_id", "no_such_aws_connection", "direct"),
]


def execute(task: Any) -> Any:
    return task.execute(run_context())


def case_id(case: tuple[str, object, str]) -> str:
    return f"{case[0]}={case[1]!r}-{case[2]}"


@pytest.mark.faults
@pytest.mark.parametrize(("parameter", "value", "how"), HOLD_CASES, ids=[case_id(c) for c in HOLD_CASES])
def test_hold_bad_input_is_rejected_before_any_io(
    connections: Any, parameter: str, value: object, how: str
) -> None:
    assert_rejected(connections, AuroraServerlessHoldOperator, HOLD_BASE, parameter, value, how, execute)


@pytest.mark.faults
@pytest.mark.parametrize(
    ("parameter", "value", "how"), RELEASE_CASES, ids=[case_id(c) for c in RELEASE_CASES]
)
def test_release_bad_input_is_rejected_before_any_io(
    connections: Any, parameter: str, value: object, how: str
) -> None:
    assert_rejected(
        connections, AuroraServerlessReleaseOperator, RELEASE_BASE, parameter, value, how, execute
    )


@pytest.mark.faults
@pytest.mark.parametrize(("parameter", "value", "how"), SWEEP_CASES, ids=[case_id(c) for c in SWEEP_CASES])
def test_sweep_bad_input_is_rejected_before_any_io(
    connections: Any, parameter: str, value: object, how: str
) -> None:
    assert_rejected(
        connections, AuroraServerlessSweepHoldsOperator, SWEEP_BASE, parameter, value, how, execute
    )


@pytest.mark.parametrize(
    ("kwargs", "parameter", "words"),
    [
        ({"min_capacity": 2.25}, "min_capacity", "steps of 0.5"),
        ({"hold_for": timedelta(days=2)}, "hold_for", "at most 86400"),
        ({"window_id": ""}, "window_id", "same one"),
        ({"start_if_stopped": "yes"}, "start_if_stopped", "True or False"),
    ],
)
def test_bad_input_fails_the_parse_beside_a_templated_cluster(
    kwargs: dict[str, Any], parameter: str, words: str
) -> None:
    with pytest.raises(InvalidParameterError, match=words) as excinfo:
        AuroraServerlessHoldOperator(
            task_id="hold",
            **{"db_cluster_identifier": "{{ var.value.cluster }}", "min_capacity": 2, **kwargs},
        )
    assert excinfo.value.parameter == parameter


def test_a_templated_cluster_list_is_not_checked_before_rendering() -> None:
    sweep = AuroraServerlessSweepHoldsOperator(
        task_id="sweep", db_cluster_identifiers=["{{ var.value.cluster }}", "orders"]
    )
    assert sweep.db_cluster_identifiers == ["{{ var.value.cluster }}", "orders"]


@pytest.mark.parametrize("how", ["direct", "template"])
def test_a_cluster_arn_is_accepted(connections: Any, how: str) -> None:
    task = build(AuroraServerlessHoldOperator, HOLD_BASE, "db_cluster_identifier", ARN, how)
    result = execute(task)
    assert result["db_cluster_identifier"] == "sales"
    execute(build(AuroraServerlessReleaseOperator, RELEASE_BASE, "db_cluster_identifier", ARN, how))
