"""The console link of the wake, ready, hold and release tasks, as Airflow's UI resolves it.

The URL per AWS partition; the provider's registration (Airflow 2.11's webserver rebuilds a
serialized task's links only from registered classes); and, after a ``dag.test()`` run on the
emulator, the link Airflow serves for each task instance (a deferred one and a failed one too),
through the DAG as the webserver or the API server deserializes it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
from airflow_support import (
    AIRFLOW_2,
    SUPERUSERS,
    TEST_DAGS_FOLDER,
    load_dag,
    run_state,
    set_aws_connection,
    set_database_connection,
    task_states_and_xcoms,
)

import airflow_aurora_wake
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings
from airflow_aurora_wake.links.aurora import AuroraClusterLink, aws_partition

LINK_CLASS = "airflow_aurora_wake.links.aurora.AuroraClusterLink"


@pytest.mark.parametrize(
    ("region", "url"),
    [
        (
            "us-east-1",
            "https://console.aws.amazon.com/rds/home?region=us-east-1#database:id=sales;is-cluster=true",
        ),
        (
            "cn-north-1",
            "https://console.amazonaws.cn/rds/home?region=cn-north-1#database:id=sales;is-cluster=true",
        ),
        (
            "us-gov-west-1",
            "https://console.amazonaws-us-gov.com/rds/home?region=us-gov-west-1#database:id=sales;is-cluster=true",
        ),
        # An isolated partition has no public console: no link rather than a wrong one.
        ("us-iso-east-1", ""),
    ],
)
def test_the_url_is_the_console_of_the_region_s_partition(region: str, url: str) -> None:
    domain = AuroraClusterLink.get_aws_domain(aws_partition(region))
    link = AuroraClusterLink().format_link(
        region_name=region, aws_domain=domain, db_cluster_identifier="sales"
    )
    assert link == url


def test_a_region_botocore_does_not_know_is_taken_for_the_commercial_partition() -> None:
    assert aws_partition("xx-future-1") == "aws"


def test_the_provider_registers_the_link_and_it_imports() -> None:
    assert airflow_aurora_wake.get_provider_info()["extra-links"] == [LINK_CLASS]
    module, _, name = LINK_CLASS.rpartition(".")
    assert getattr(importlib.import_module(module), name) is AuroraClusterLink
    from airflow.providers_manager import ProvidersManager

    assert LINK_CLASS in ProvidersManager().extra_links_class_names


@pytest.fixture
def emulator(
    postgres_server: Any, monkeypatch: pytest.MonkeyPatch, airflow_db: str
) -> Iterator[AuroraEmulator]:
    """The clusters of tests/dags/links_dags.py, and the connections to them."""
    links_dags = load_dag_module()
    emu = AuroraEmulator(
        [ClusterSpec(links_dags.STARTED, kind="provisioned", state="stopped")],
        # Longer than the sensor's check before deferring, so ``ready`` defers.
        timings=Timings(start_seconds=6.0, stop_seconds=1.0),
    )
    emu.start()
    try:
        set_aws_connection(monkeypatch, emu, conn_id=links_dags.AWS_CONN_ID)
        set_database_connection(
            monkeypatch, links_dags.DB_CONN_ID, engine="postgresql", user=SUPERUSERS["postgresql"]
        )
        yield emu
    finally:
        emu.shutdown()


def load_dag_module() -> Any:
    spec = importlib.util.spec_from_file_location("links_dags", TEST_DAGS_FOLDER / "links_dags.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def served_link(dag: Any, run_id: str, task_id: str) -> str | None:
    """The link of a task instance, as the webserver (2.11) or the API server (3.x) resolves it."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if AIRFLOW_2:
        from airflow.serialization.serialized_objects import SerializedDAG as Serializer
    else:
        from airflow.serialization.serialized_objects import DagSerialization as Serializer
    served = Serializer.from_dict(Serializer.to_dict(dag))
    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag.dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
            )
        ).one()
        link: str | None = served.get_task(task_id).get_extra_links(ti, AuroraClusterLink.name)
    return link


@pytest.mark.airflow
@pytest.mark.emulator
@pytest.mark.db
@pytest.mark.timeout(240)
def test_each_task_instance_links_to_its_cluster(
    emulator: AuroraEmulator, trigger_runs: list[dict[str, Any]]
) -> None:
    dag = load_dag(TEST_DAGS_FOLDER / "links_dags.py")
    run = dag.test()

    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {
        "wake": "success",
        "ready": "success",
        "hold": "success",
        "release": "success",
        "wake_ghost": "failed",
    }, states
    assert run_state(run) == "failed"
    assert xcoms["wake"]["action"] == "start-db-cluster"
    # ``ready`` deferred: what it stored before deferring outlived its deferral.
    assert [kwargs["db_cluster_identifier"] for kwargs in trigger_runs] == ["links-started"]
    console = "https://console.aws.amazon.com/rds/home?region=us-east-1#database:id="
    for task_id in ("wake", "ready", "hold", "release"):
        assert served_link(dag, run.run_id, task_id) == f"{console}links-started;is-cluster=true", task_id
    # Stored before any AWS call: the task that failed on its cluster links to it too.
    assert served_link(dag, run.run_id, "wake_ghost") == f"{console}links-ghost;is-cluster=true"
