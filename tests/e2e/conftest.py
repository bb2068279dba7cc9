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
SLOT_PROBE_DAG = Path(__file__).resolve().parent / "dags" / "e2e_executor_slot_probe.py"
CLUSTER = "e2e-sales"
#: The resume lasts until the test ends it (``emu.wake``), once it has seen what it must see
#: while the cluster resumes; the bound only matters if the test breaks.
RESUME_SECONDS = 900.0


@pytest.fixture
def emulator(postgres_server: Any) -> Iterator[AuroraEmulator]:
    """A paused Serverless v2 PostgreSQL cluster in front of the real PostgreSQL server."""
    emu = AuroraEmulator(
        [ClusterSpec(CLUSTER, kind="serverless-v2", engine="aurora-postgresql", state="paused")],
        timings=Timings(resume_seconds=RESUME_SECONDS),
    )
    emu.start()
    try:
        yield emu
    finally:
        emu.shutdown()


@pytest.fixture
def airflow(tmp_path: Path, emulator: AuroraEmulator, postgres_server: Any) -> Iterator[AirflowDeployment]:
    """A migrated Airflow home with the example DAG and the slot probe DAG; nothing started yet.

    Its processes are stopped when the test ends, passed or failed.
    """
    endpoint = emulator.cluster(CLUSTER)
    env = {
        **emulator.aws_env(),
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": emulator.endpoint_url, "region_name": emulator.region},
            }
        ),
        "AIRFLOW_CONN_AURORA_PG": json.dumps(
            {
                "conn_type": "postgres",
                "host": endpoint.host,
                "port": endpoint.port,
                "login": postgres_server.user,
                "schema": postgres_server.database,
            }
        ),
        "AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER": CLUSTER,
    }
    with deployment(tmp_path / "airflow-home", env, parallelism=1) as airflow:
        shutil.copy(EXAMPLE_DAG, airflow.dags_folder)
        shutil.copy(SLOT_PROBE_DAG, airflow.dags_folder)
        airflow.run_cli("db", "migrate", timeout=300)
        yield airflow
