"""Helpers for running the example DAGs whole with ``dag.test()`` against the emulator.

``dag.test()`` runs a deferred sensor's trigger inline (Airflow 3.3 and 2.11), so one call is
wake, a real deferral, the trigger, the resume and the SQL steps, in one process. It does not
enforce the deferral timeout: every test using it has an outer ``pytest.mark.timeout``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from airflow_support import EXAMPLE_DAGS_FOLDER, SUPERUSERS, set_connection

from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

#: The ETL table of ``example_aurora_serverless_wake`` (a contract with the end-to-end test).
SALES_TABLE = "aurora_wake_example_sales"
SALES_ROWS = [["apples", 3], ["bread", 2], ["coffee", 5]]
CONN_TYPES = {"postgresql": "postgres", "mysql": "mysql"}


def load_example_dag(name: str) -> Any:
    """Import ``example_dags/<name>.py`` as a fresh module and return its ``dag``.

    :param name: The file name without ``.py`` (also the DAG id).
    """
    path = EXAMPLE_DAGS_FOLDER / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def set_cluster_database_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, cluster: Any, *, engine: str
) -> None:
    """Define a ``postgres``/``mysql`` connection to the emulated cluster's writer endpoint.

    The SQL steps of the example DAGs connect with the connection as it is, so (unlike the
    sensor) they need the endpoint's host and port in it, as on AWS.

    :param monkeypatch: The test's monkeypatch.
    :param conn_id: The connection id to define.
    :param cluster: The :class:`airflow_support.EmulatedCluster`.
    :param engine: ``postgresql`` or ``mysql``.
    """
    endpoint = cluster.emu.cluster(cluster.identifier)
    set_connection(
        monkeypatch,
        conn_id,
        conn_type=CONN_TYPES[engine],
        host=endpoint.host,
        port=endpoint.port,
        login=SUPERUSERS[engine],
        schema="test",
    )


@pytest.fixture
def trigger_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Record the kwargs of every readiness trigger that runs (proof that the sensor deferred)."""
    runs: list[dict[str, Any]] = []
    original_run = AuroraServerlessReadyTrigger.run

    async def spy_run(self: AuroraServerlessReadyTrigger) -> AsyncIterator[Any]:
        runs.append(self.serialize()[1])
        async for event in original_run(self):
            yield event

    monkeypatch.setattr(AuroraServerlessReadyTrigger, "run", spy_run)
    yield runs


def run_state(run: Any) -> str:
    """The state of a DAG run as a plain string (``success``, ``failed``...)."""
    return str(getattr(run.state, "value", run.state))


def plain(value: Any) -> Any:
    """Turn tuples (rows) into lists, recursively, so XComs compare with JSON-like literals.

    :param value: A deserialised XCom value.
    """
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def task_states_and_xcoms(dag_id: str, run_id: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Read the task instances' states and return values of one DAG run from Airflow's database.

    XComs are deserialised the way a downstream task would see them, rows as lists.

    :param dag_id: The DAG id.
    :param run_id: The DAG run id.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    try:  # Airflow 3
        from airflow.models.xcom import XComModel as XComTable
        from airflow.sdk.serde import deserialize

        def row_value(row: Any) -> Any:
            return deserialize(XComTable.deserialize_value(row))
    except ImportError:  # Airflow 2.11: the ORM row deserialises its value when loaded
        from airflow.models.xcom import XCom as XComTable  # type: ignore[no-redef]

        def row_value(row: Any) -> Any:
            return row.value

    with create_session() as session:
        instances = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        )
        states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in instances}
        rows = session.scalars(
            select(XComTable).where(
                XComTable.dag_id == dag_id, XComTable.run_id == run_id, XComTable.key == "return_value"
            )
        )
        xcoms = {row.task_id: plain(row_value(row)) for row in rows}
    return states, xcoms


def sales_rows(server: Any, run_id: str, *, delete: bool = False) -> list[list[Any]]:
    """Read (and optionally delete) one DAG run's rows of the ETL table on the real server.

    :param server: The real server behind the emulated cluster (a ``DatabaseServer`` fixture).
    :param run_id: The DAG run id the rows are tagged with.
    :param delete: Delete the rows after reading them (test clean-up).
    """
    select_sql = f"SELECT item, amount FROM {SALES_TABLE} WHERE run_id = %s ORDER BY item"
    delete_sql = f"DELETE FROM {SALES_TABLE} WHERE run_id = %s"
    if server.engine == "postgresql":
        import psycopg

        with psycopg.connect(
            host=server.host, port=server.port, user=server.user, dbname=server.database
        ) as db:
            rows = db.execute(select_sql, (run_id,)).fetchall()
            if delete:
                db.execute(delete_sql, (run_id,))
    else:
        import pymysql

        with pymysql.connect(
            host=server.host, port=server.port, user=server.user, database=server.database
        ) as db:
            with db.cursor() as cursor:
                cursor.execute(select_sql, (run_id,))
                rows = cursor.fetchall()
                if delete:
                    cursor.execute(delete_sql, (run_id,))
            db.commit()
    return [list(row) for row in rows]
