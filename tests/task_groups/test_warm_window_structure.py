"""How :class:`AuroraServerlessWarmWindow` wires a DAG: its setups, its teardown, the body between.

No run here (tests/task_groups/test_warm_window_runs.py runs the window): the DAG's graph as
Airflow builds it, what Airflow clears with a body task, and bad input refused at parse time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskGroup

from airflow_aurora_wake.compat import DAG, task
from airflow_aurora_wake.core.errors import InvalidParameterError
from airflow_aurora_wake.operators.aurora_window import (
    AuroraServerlessHoldOperator,
    AuroraServerlessReleaseOperator,
)
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor
from airflow_aurora_wake.task_groups.warm_window import AuroraServerlessWarmWindow

WINDOW = {"db_cluster_identifier": "sales", "conn_id": "aurora_db", "min_capacity": 8, "max_capacity": 16}
OWN = ["warm.hold", "warm.ready", "warm.hold_floor", "warm.release"]


def new_dag(dag_id: str = "window_structure") -> Any:
    return DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1))


def step(task_id: str) -> Any:
    """A body task (a TaskFlow task that does nothing)."""

    @task(task_id=task_id)
    def noop() -> None:
        return None

    return noop()


def upstream(dag: Any, task_id: str) -> list[str]:
    return sorted(dag.get_task(task_id).upstream_task_ids)


def test_the_window_is_hold_ready_hold_floor_then_the_body_then_release() -> None:
    with new_dag() as dag, AuroraServerlessWarmWindow("warm", **WINDOW) as window:
        step("load") >> step("check")

    assert [t.task_id for t in dag.topological_sort()] == [*OWN[:3], "warm.load", "warm.check", OWN[3]]
    assert upstream(dag, "warm.ready") == ["warm.hold"]
    assert upstream(dag, "warm.hold_floor") == ["warm.ready"]
    assert upstream(dag, "warm.load") == ["warm.hold_floor"]
    # The release follows the body's last task, and each setup it tears down.
    assert upstream(dag, "warm.release") == sorted(["warm.check", *OWN[:3]])
    assert [dag.get_task(t).is_setup for t in OWN] == [True, True, True, False]
    assert [dag.get_task(t).is_teardown for t in OWN] == [False, False, False, True]
    assert dag.get_task("warm.release").trigger_rule == "all_done_setup_success"
    assert (window.hold, window.ready, window.hold_floor, window.release) == tuple(
        dag.get_task(t) for t in OWN
    )
    assert isinstance(window.hold, AuroraServerlessHoldOperator)
    assert isinstance(window.ready, AuroraServerlessReadySensor)
    assert isinstance(window.release, AuroraServerlessReleaseOperator)


def test_every_root_and_leaf_of_the_body_is_wired_nested_groups_included() -> None:
    with new_dag() as dag:
        extract = step("extract")
        with AuroraServerlessWarmWindow("warm", **WINDOW):
            first = step("first")
            first >> [step("left"), step("right")]
            loaded = step("loaded")
            extract >> loaded  # a body task that also waits for a task before the window
            with TaskGroup("checks"):
                step("count") >> step("sums")

    assert upstream(dag, "warm.first") == ["warm.hold_floor"]
    assert upstream(dag, "warm.loaded") == ["extract", "warm.hold_floor"]
    assert upstream(dag, "warm.checks.count") == ["warm.hold_floor"]
    assert upstream(dag, "warm.release") == sorted(
        ["warm.left", "warm.right", "warm.loaded", "warm.checks.sums", *OWN[:3]]
    )


def test_a_window_without_a_body_releases_after_hold_floor() -> None:
    with new_dag() as dag:
        AuroraServerlessWarmWindow("warm", **WINDOW)
    assert [t.task_id for t in dag.topological_sort()] == OWN
    assert "warm.hold_floor" in upstream(dag, "warm.release")


def test_tasks_around_the_window_come_before_its_hold_and_after_its_body() -> None:
    with new_dag() as dag:
        before = step("before")
        with AuroraServerlessWarmWindow("warm", **WINDOW) as window:
            step("load")
        after = step("after")
        before >> window >> after

    assert upstream(dag, "warm.hold") == ["before"]
    # Airflow's rule for a group that ends in a teardown: what follows it follows the work.
    assert upstream(dag, "after") == ["warm.load"]


def test_the_holds_and_the_release_share_the_window_id_which_defaults_to_the_group_id() -> None:
    with new_dag():
        with AuroraServerlessWarmWindow("warm", **WINDOW) as first:
            step("a")
        with TaskGroup("outer"), AuroraServerlessWarmWindow("nested", **WINDOW) as nested:
            step("b")
        with AuroraServerlessWarmWindow("named", window_id="nightly", **WINDOW) as named:
            step("c")

    for window, window_id in ((first, "warm"), (nested, "outer.nested"), (named, "nightly")):
        assert window.hold.window_id == window.hold_floor.window_id == window.release.window_id == window_id


def test_the_settings_reach_the_tasks() -> None:
    with (
        new_dag(),
        AuroraServerlessWarmWindow(
            "warm",
            db_cluster_identifier="{{ var.value.cluster }}",
            conn_id="aurora_db",
            min_capacity=4,
            hold_for=timedelta(minutes=90),
            start_if_stopped=False,
            stop_if_started=True,
            ready_timeout=timedelta(minutes=10),
            aws_conn_id="aws_prod",
            region_name="eu-west-1",
        ) as window,
    ):
        step("load")

    for held in (window.hold, window.hold_floor):
        assert (held.min_capacity, held.hold_for, held.start_if_stopped) == (4, timedelta(minutes=90), False)
    assert window.release.stop_if_started is True
    assert (window.ready.conn_id, window.ready.deferrable, window.ready.timeout) == ("aurora_db", True, 600)
    for own in (window.hold, window.ready, window.hold_floor, window.release):
        assert (own.db_cluster_identifier, own.aws_conn_id, own.region_name) == (
            "{{ var.value.cluster }}",
            "aws_prod",
            "eu-west-1",
        )


def test_clearing_a_body_task_clears_the_whole_window_and_a_later_task_clears_none_of_it() -> None:
    """What Airflow clears with a task (its relevant setups and their teardowns)."""
    with new_dag() as dag:
        with AuroraServerlessWarmWindow("warm", **WINDOW) as window:
            step("load") >> step("check")
        window >> step("report")

    cleared_with_check = dag.partial_subset(["warm.check"], include_downstream=False, include_upstream=False)
    assert sorted(cleared_with_check.task_dict) == sorted([*OWN, "warm.check"])
    cleared_with_report = dag.partial_subset(["report"], include_downstream=False, include_upstream=False)
    assert sorted(cleared_with_report.task_dict) == ["report"]


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"min_capacity": 2.25}, "min_capacity"),
        ({"hold_for": timedelta(days=2)}, "hold_for"),
        ({"max_capacity": 4}, "max_capacity"),
        ({"stop_if_started": "no"}, "stop_if_started"),
        ({"window_id": " warm"}, "window_id"),
        ({"conn_id": None}, "conn_id"),
        ({"probe": "ping"}, "probe"),
        ({"db_cluster_identifier": "bad_name!"}, "db_cluster_identifier"),
    ],
)
def test_bad_input_fails_the_parse(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as excinfo, new_dag():
        AuroraServerlessWarmWindow("warm", **{**WINDOW, **kwargs})
    assert excinfo.value.parameter == parameter
