"""``example_aurora_reader_endpoint``, run whole with ``dag.test()`` against the emulator.

A paused Serverless v2 cluster whose only reader is in failover tier 2 (it sleeps on its own),
on both engines: the wake nudges the reader endpoint, the sensor waits (deferred) until the
reader endpoint answers, and the SQL step reads through it. The reader, not the writer, is
what answered.
"""

from __future__ import annotations

from typing import Any

import pytest
import reader_clusters
from airflow_support import SUPERUSERS, run_state, set_aws_connection, set_connection, task_states_and_xcoms
from example_support import CONN_TYPES, load_example_dag

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]
with_readers = reader_clusters.with_readers  # the fixture

DAG_ID = "example_aurora_reader_endpoint"


def test_example_dag_structure() -> None:
    dag = load_example_dag(DAG_ID)
    assert dag.dag_id == DAG_ID
    assert [task.task_id for task in dag.topological_sort()] == ["wake", "ready", "read_report"]
    ready = dag.get_task("ready")
    assert ready.deferrable is True
    assert (ready.instances, dag.get_task("wake").instances) == ("reader", "reader")
    assert type(dag.get_task("read_report")).__name__ == "SQLExecuteQueryOperator"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_dag_test_waits_for_the_reader_and_reads_from_it(
    airflow_db: str, with_readers: Any, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    cluster = with_readers(tiers=(2,), engine=engine)
    emu = cluster.emu
    endpoint = emu.cluster(cluster.identifier)
    (reader,) = emu.readers(cluster.identifier)
    conn_id = "aurora_pg_reader" if engine == "postgresql" else "aurora_mysql_reader"
    set_aws_connection(monkeypatch, emu, conn_id="aws_default")
    # What a user configures: the reader endpoint's host and the cluster's port.
    set_connection(
        monkeypatch,
        conn_id,
        conn_type=CONN_TYPES[engine],
        host=endpoint.reader_host,
        port=endpoint.port,
        login=SUPERUSERS[engine],
        schema="test",
    )
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER", cluster.identifier)
    monkeypatch.setenv("AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_READER_CONN_ID", conn_id)

    run = load_example_dag(DAG_ID).test()

    assert run_state(run) == "success"
    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == {"wake": "success", "ready": "success", "read_report": "success"}
    assert xcoms["wake"]["action"] == "connection-nudge"
    assert "reader endpoint" in xcoms["wake"]["detail"]
    # The reader slept; a connection through the reader endpoint resumed it.
    resumes = [e for e in emu.instance_timeline(reader.identifier) if e.event == "resume-requested"]
    assert [e.detail["cause"] for e in resumes][:1] == ["connection"]
    ready = xcoms["ready"]
    assert ready["instances"] == "reader"
    assert ready["endpoint"] == f"{endpoint.reader_host}:{endpoint.port}"
    assert ready["note"] is None  # a reader answered, not the writer
    reader_ready_at = emu.instance_ready_at(reader.identifier)
    assert reader_ready_at is not None and ready["ready_at"] >= reader_ready_at
    assert xcoms["read_report"] > 0
    # The probes and the SQL step went to the reader (through the reader endpoint).
    assert emu.reader_state(reader.identifier)["connections_completed"] >= 2
