"""Fixtures of the end-to-end test: the emulator in this process, a real Airflow in others."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_airflow import AirflowDeployment, deployment

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAG = REPO_ROOT / "example_dags" / "example_aurora_serverless_wake.py"
E2E_DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
#: Its connections are kept in each place users keep them, the metadata database among them.
CONNECTION_SOURCES_DAG = E2E_DAGS_FOLDER / "e2e_connection_sources.py"
CLUSTER = "e2e-sales"
#: The resume lasts until the test ends it (``emu.wake``), once it has seen what it must see
#: while the cluster resumes; the bound only matters if the test breaks.
RESUME_SECONDS = 900.0


@pytest.fixture
def resume_seconds() -> float:
    """How long the emulated cluster's resume lasts; a test module overrides it."""
    return RESUME_SECONDS


@pytest.fixture
def emulator(postgres_server: Any, resume_seconds: float) -> Iterator[AuroraEmulator]:
    """A paused Serverless v2 PostgreSQL cluster in front of the real PostgreSQL server."""
    emu = AuroraEmulator(
        [ClusterSpec(CLUSTER, kind="serverless-v2", engine="aurora-postgresql", state="paused")],
        timings=Timings(resume_seconds=resume_seconds),
    )
    emu.start()
    try:
        yield emu
    finally:
        emu.shutdown()


@pytest.fixture
def e2e_dag_files() -> list[Path]:
    """The DAG files the deployment parses: the example DAG's test's. A test module overrides it.

    Every DAG file costs the dag processor's time, so a test gets only the DAGs it runs.
    """
    return [EXAMPLE_DAG, E2E_DAGS_FOLDER / "e2e_executor_slot_probe.py", CONNECTION_SOURCES_DAG]


@pytest.fixture
def airflow(
    tmp_path: Path, emulator: AuroraEmulator, postgres_server: Any, e2e_dag_files: list[Path]
) -> Iterator[AirflowDeployment]:
    """A migrated Airflow home with the test's DAGs and their connections; nothing started yet.

    The DAGs' own connections (``aws_default``, ``aurora_pg``) are ``AIRFLOW_CONN_*`` variables.
    The connection-sources DAG's pairs are kept where users keep them (see
    ``dags/e2e_connection_sources.py``): in the metadata database through ``airflow connections
    add`` (only when that DAG is among ``e2e_dag_files``: each command starts Airflow's CLI), in
    environment variables, and in Airflow's local-filesystem secrets backend. Its processes are
    stopped when the test ends, passed or failed.
    """
    endpoint = emulator.cluster(CLUSTER)
    aws = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": emulator.endpoint_url, "region_name": emulator.region},
    }
    database = {
        "conn_type": "postgres",
        "host": endpoint.host,
        "port": endpoint.port,
        "login": postgres_server.user,
        "schema": postgres_server.database,
    }
    secrets_file = tmp_path / "secrets-backend-connections.json"
    secrets_file.write_text(
        json.dumps({"aws_secrets": {**aws, "extra": json.dumps(aws["extra"])}, "pg_secrets": database})
    )
    env = {
        **emulator.aws_env(),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws),
        "AIRFLOW_CONN_AURORA_PG": json.dumps(database),
        "AIRFLOW_CONN_AWS_ENV": json.dumps(aws),
        "AIRFLOW_CONN_PG_ENV": json.dumps(database),
        "AIRFLOW__SECRETS__BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"connections_file_path": str(secrets_file)}),
        "AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER": CLUSTER,
    }
    with deployment(tmp_path / "airflow-home", env, parallelism=1) as airflow:
        for dag_file in e2e_dag_files:
            shutil.copy(dag_file, airflow.dags_folder)
        airflow.run_cli("db", "migrate", timeout=300)
        if CONNECTION_SOURCES_DAG in e2e_dag_files:
            for conn_id, fields in (("aws_metadata", aws), ("pg_metadata", database)):
                airflow.run_cli("connections", "add", conn_id, "--conn-json", json.dumps(fields))
        yield airflow
