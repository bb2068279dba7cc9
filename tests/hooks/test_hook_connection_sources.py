"""Connections wherever users keep them, found in every place the package looks one up.

Sources: the metadata database (what ``airflow connections add`` and the UI write), an
``AIRFLOW_CONN_*`` environment variable, and a secrets backend (Airflow's local-filesystem one,
which the test session configures). Places, in one ``dag.test()`` run per source: the wake
operator (its connection nudge), the sensor's check in the worker, poke mode, reschedule mode,
and the trigger, which ``dag.test()`` runs inline through its in-process supervisor (where
Airflow 3.3.2's asynchronous look-up finds nothing in the metadata database). The real
triggerer is the end-to-end test's place (tests/e2e). Both the AWS connection and the database
connection come from the source under test, and no ``AWS_*`` variable points at the emulator:
an AWS connection that was not found cannot reach it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from airflow_support import (
    SECRETS_BACKEND_CONNECTIONS,
    SUPERUSERS,
    TEST_DAGS_FOLDER,
    load_dag,
    run_state,
    set_connection,
    task_states_and_xcoms,
)

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

SOURCES = ["metadata-database", "environment-variable", "secrets-backend"]
#: The connection ids tests/dags/connection_sources.py uses.
AWS_CONN_ID = "aws_from_source"
DB_CONN_ID = "db_from_source"
#: What could point boto3 at the emulator, or sign for it, without the AWS connection.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
)
#: Longer than the sensor's check in the worker (5 s), so the sensor on this cluster defers.
DEFERRING_RESUME_SECONDS = 8.0

StoreConnection = Callable[[str, dict[str, Any]], None]


def store_in_metadata_database(stored: list[str]) -> StoreConnection:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    def store(conn_id: str, fields: dict[str, Any]) -> None:
        extra = fields.get("extra")
        with create_session() as session:
            session.add(
                Connection(
                    conn_id=conn_id,
                    conn_type=fields["conn_type"],
                    host=fields.get("host"),
                    port=fields.get("port"),
                    login=fields.get("login"),
                    password=fields.get("password"),
                    schema=fields.get("schema"),
                    extra=json.dumps(extra) if extra is not None else None,
                )
            )
        stored.append(conn_id)

    return store


def delete_from_metadata_database(conn_ids: list[str]) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.in_(conn_ids)).delete()


@pytest.fixture(params=SOURCES)
def store_connection(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, airflow_db: str
) -> Iterator[StoreConnection]:
    """Store a connection in one source (the parameter); everything stored is removed afterwards."""
    source = request.param
    if source == "environment-variable":
        yield lambda conn_id, fields: set_connection(monkeypatch, conn_id, **fields)
    elif source == "secrets-backend":
        served: dict[str, Any] = {}

        def store(conn_id: str, fields: dict[str, Any]) -> None:
            extra = fields.get("extra")
            served[conn_id] = {**fields, "extra": json.dumps(extra)} if extra is not None else fields
            SECRETS_BACKEND_CONNECTIONS.write_text(json.dumps(served))

        try:
            yield store
        finally:
            SECRETS_BACKEND_CONNECTIONS.write_text("{}")
    else:
        stored: list[str] = []
        try:
            yield store_in_metadata_database(stored)
        finally:
            delete_from_metadata_database(stored)


@pytest.fixture
def clusters(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuroraEmulator]:
    """Three PostgreSQL clusters: paused (for the nudge), warm, and paused with a resume that defers."""
    request.getfixturevalue("postgres_server")
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    emu = AuroraEmulator(
        [
            ClusterSpec("nudged", state="paused"),
            ClusterSpec("warm", state="available"),
            ClusterSpec("deferring", state="paused"),
        ],
        timings=Timings(resume_seconds=DEFERRING_RESUME_SECONDS),
    )
    emu.start()
    try:
        yield emu
    finally:
        emu.shutdown()


@pytest.mark.timeout(240)
def test_every_place_finds_connections_in_every_source(
    store_connection: StoreConnection,
    clusters: AuroraEmulator,
    trigger_runs: list[dict[str, Any]],
) -> None:
    store_connection(
        AWS_CONN_ID,
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": clusters.endpoint_url, "region_name": clusters.region},
        },
    )
    # No host: the sensor and the nudge use each cluster's writer endpoint.
    store_connection(
        DB_CONN_ID, {"conn_type": "postgres", "login": SUPERUSERS["postgresql"], "schema": "test"}
    )

    run = load_dag(TEST_DAGS_FOLDER / "connection_sources.py").test()

    states, xcoms = task_states_and_xcoms(run.dag_id, run.run_id)
    assert states == dict.fromkeys(
        ["operator", "worker_check", "poke_mode", "reschedule_mode", "trigger"], "success"
    ), states
    assert run_state(run) == "success"
    # The nudge opened a connection with the database connection's settings.
    assert xcoms["operator"]["action"] == "connection-nudge"
    resumes = [e for e in clusters.timeline("nudged") if e.event == "resume-requested"]
    assert [e.detail.get("cause") for e in resumes] == ["connection"]
    # The resume outlasts the check in the worker: the trigger looked both connections up.
    assert "deferring" in {kwargs["db_cluster_identifier"] for kwargs in trigger_runs}
    ready_at = clusters.ready_at("deferring")
    assert ready_at is not None and xcoms["trigger"]["ready_at"] >= ready_at
    for task_id in ("worker_check", "poke_mode", "reschedule_mode", "trigger"):
        assert xcoms[task_id]["attempts"] >= 1, (task_id, xcoms[task_id])
