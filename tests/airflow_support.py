"""Airflow test harness for the adapter tests (hooks, operators, sensors, triggers, example DAGs).

Importing this module, before anything imports ``airflow``, points Airflow at a temporary
``AIRFLOW_HOME`` for the whole session (SQLite metadata database inside it, unit-test mode, no
example DAGs, the project's ``example_dags`` as DAGs folder). Each adapter test folder's
``conftest.py`` imports it first. Connections come from ``AIRFLOW_CONN_<ID>`` environment
variables in JSON form, set per test with ``monkeypatch``.

It also has the fixtures and helpers the adapter tests share: emulators, connection set-up, the
trigger round trip through Airflow's own storage of trigger kwargs, and ``airflow db migrate``
(once per session) for ``dag.test()``.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS_FOLDER = REPO_ROOT / "example_dags"

if "airflow" in sys.modules and not os.environ.get("AURORA_WAKE_TEST_AIRFLOW_HOME"):
    raise RuntimeError(
        "airflow was imported before tests/airflow_support.py could configure it; import "
        "airflow_support first in the adapter tests' conftest.py"
    )

AIRFLOW_HOME = os.environ.get("AURORA_WAKE_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(
    prefix="aurora-wake-airflow-home-"
)
if not os.environ.get("AURORA_WAKE_TEST_AIRFLOW_HOME"):
    atexit.register(shutil.rmtree, AIRFLOW_HOME, True)
#: Airflow 2.11 runs this same harness in the second CI stage (see .ci/run).
AIRFLOW_2 = importlib.metadata.version("apache-airflow").startswith("2.")
AIRFLOW_ENV = {
    "AURORA_WAKE_TEST_AIRFLOW_HOME": AIRFLOW_HOME,
    "AIRFLOW_HOME": AIRFLOW_HOME,
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS_FOLDER),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
    "AIRFLOW__CORE__FERNET_KEY": "u9QxW3i5eV2cQmHkN2x0mYq0d8cQxQm4vB2WfH8gZ1s=",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
}
if AIRFLOW_2:
    # 2.11's unit-test mode selects the LocalExecutor, which refuses SQLite; dag.test() needs none.
    AIRFLOW_ENV["AIRFLOW__CORE__EXECUTOR"] = "SequentialExecutor"
os.environ.update(AIRFLOW_ENV)

if AIRFLOW_2:
    import threading

    from airflow.models.baseoperator import ExecutorSafeguard

    class _CallersPerThread(threading.local):
        """2.11's execute() guard keeps a thread-local dict it only creates in the importing
        thread; tests that run ``execute`` in a worker thread (``asyncio.to_thread``) need it
        in every thread. Airflow itself always calls ``execute`` in the task's main thread."""

        def __init__(self) -> None:
            self.callers: dict[str, Any] = {}

    ExecutorSafeguard._sentinel = _CallersPerThread()

import pytest  # noqa: E402

AWS_CONN_ID = "aws_emulator"
#: The cluster every adapter test uses.
CLUSTER = "sales"
ENGINES = {"postgresql": "aurora-postgresql", "mysql": "aurora-mysql"}
CONN_TYPES = {"postgresql": "postgres", "mysql": "mysql"}


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    """Define an Airflow connection for this test through an ``AIRFLOW_CONN_<ID>`` variable."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def set_unanswering_aws_connection(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> str:
    """Define an AWS connection to an endpoint that never answers (see the ``black_hole`` fixture)."""
    set_connection(
        monkeypatch,
        "aws_black_hole",
        conn_type="aws",
        login="testing",
        password="testing",
        extra={"endpoint_url": endpoint_url, "region_name": "us-east-1"},
    )
    return "aws_black_hole"


def set_aws_connection(monkeypatch: pytest.MonkeyPatch, emu: Any, conn_id: str = AWS_CONN_ID) -> str:
    """Define an AWS connection that points at the emulator's endpoint; return its id."""
    set_connection(
        monkeypatch,
        conn_id,
        conn_type="aws",
        login="testing",
        password="testing",
        extra={"endpoint_url": emu.endpoint_url, "region_name": emu.region},
    )
    for name, value in emu.aws_env().items():
        monkeypatch.setenv(name, value)
    return conn_id


def set_database_connection(
    monkeypatch: pytest.MonkeyPatch,
    conn_id: str,
    *,
    engine: str,
    user: str,
    password: str | None = None,
    host: str | None = None,
    port: int | None = None,
    database: str | None = "test",
    conn_type: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Define a ``postgres``/``mysql`` Airflow connection; an empty host means "cluster endpoint"."""
    fields: dict[str, Any] = {"conn_type": conn_type or CONN_TYPES[engine], "login": user}
    if password is not None:
        fields["password"] = password
    if host is not None:
        fields["host"] = host
    if port is not None:
        fields["port"] = port
    if database is not None:
        fields["schema"] = database
    if extra:
        fields["extra"] = extra
    set_connection(monkeypatch, conn_id, **fields)
    return conn_id


def roundtrip_trigger(trigger: Any) -> Any:
    """Store a trigger's kwargs the way Airflow does and re-create it as a triggerer would.

    Airflow 3.3 serialises the kwargs with ``airflow.sdk.serde`` in the task runner, and the
    ``Trigger`` row encrypts them (serde + JSON + Fernet); the triggerer decrypts them and calls
    ``TriggerClass(**kwargs)``. Airflow 2.11 used ``BaseSerialization``: both are exercised.
    """
    from airflow.models.trigger import Trigger
    from airflow.serialization.serialized_objects import BaseSerialization

    classpath, kwargs = trigger.serialize()
    stored = Trigger.from_object(trigger)
    from_row = stored.kwargs
    if not AIRFLOW_2:
        from airflow.sdk.serde import deserialize as serde_deserialize
        from airflow.sdk.serde import serialize as serde_serialize

        # Task runner -> API server (serde, JSON over the wire), then into the trigger table.
        wire = json.loads(json.dumps(serde_serialize(kwargs)))
        assert from_row == serde_deserialize(wire)
    # Airflow 2.11's storage format.
    legacy = BaseSerialization.deserialize(json.loads(json.dumps(BaseSerialization.serialize(kwargs))))
    assert legacy == from_row
    module_name, _, class_name = classpath.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)(**from_row)


_DB_MIGRATED = False


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[str]:
    """Create the metadata database in the session's ``AIRFLOW_HOME`` (``airflow db migrate``)."""
    global _DB_MIGRATED
    if not _DB_MIGRATED:
        airflow_bin = Path(sys.executable).with_name("airflow")
        subprocess.run(
            [str(airflow_bin), "db", "migrate"],
            check=True,
            env={**os.environ, **AIRFLOW_ENV},
            capture_output=True,
            timeout=180,
        )
        _DB_MIGRATED = True
    yield AIRFLOW_HOME


# --------------------------------------------------------------------------- emulator
#: Short timings keep the suite fast; every wait still really happens.
FAST_TIMINGS: dict[str, float] = {
    "resume_seconds": 1.5,
    "v1_capacity_seconds": 1.0,
    "v1_connect_extra_seconds": 1.0,
    "start_seconds": 2.0,
    "stop_seconds": 1.0,
}
#: Logins that the real servers accept without a password (see tests/conftest.py).
SUPERUSERS = {"postgresql": "postgres", "mysql": "root"}
DB_CONN_ID = "aurora_db"


@dataclass
class EmulatedCluster:
    """One emulated cluster and the Airflow connections that reach it.

    :param emu: The running emulator.
    :param identifier: The cluster identifier.
    :param engine: ``postgresql`` or ``mysql``.
    :param kind: ``serverless-v2``, ``serverless-v1`` or ``provisioned``.
    :param aws_conn_id: AWS connection pointing at the emulator.
    :param conn_id: Database connection with an empty host (the cluster endpoint is used).
    """

    emu: Any
    identifier: str
    engine: str
    kind: str
    aws_conn_id: str
    conn_id: str

    def counters(self) -> dict[str, Any]:
        """The emulator's counters for this cluster (RDS calls, connection attempts...)."""
        counters = self.emu.counters()
        return {
            "rds_calls": counters["rds_calls_by_cluster"].get(self.identifier, {}),
            "connection_attempts": counters["connection_attempts"].get(self.identifier, 0),
            "connections_completed": counters["connections_completed"].get(self.identifier, 0),
            "data_api_calls": counters["data_api_calls"].get(self.identifier, 0),
        }

    def ready_at(self) -> float | None:
        """When the emulator last made the cluster connectable."""
        return self.emu.ready_at(self.identifier)

    def describe(self) -> dict[str, Any]:
        """``DescribeDBClusters`` of the cluster, through boto3 (counted by the emulator)."""
        return self.emu.boto3_client("rds").describe_db_clusters(DBClusterIdentifier=self.identifier)[
            "DBClusters"
        ][0]


@pytest.fixture
def emulated(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Factory: start an emulator with one cluster, and the AWS and database connections to it.

    ``emulated(kind=..., engine=..., state=..., data_api=..., timings=..., user=..., password=...)``
    returns an :class:`EmulatedCluster`; the emulator stops at the end of the test. The real
    database server of the engine must be up (the ``postgres_server`` / ``mariadb_server``
    fixtures of tests/conftest.py fail in CI and skip elsewhere with the start command).
    """
    from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings

    started: list[Any] = []

    def start(
        *,
        kind: str = "serverless-v2",
        engine: str = "postgresql",
        state: str = "paused",
        data_api: bool = False,
        identifier: str = CLUSTER,
        timings: dict[str, float] | None = None,
        user: str | None = None,
        password: str | None = None,
        conn_extra: dict[str, Any] | None = None,
        iam_auth: bool = False,
    ) -> EmulatedCluster:
        request.getfixturevalue("postgres_server" if engine == "postgresql" else "mariadb_server")
        emu = AuroraEmulator(
            [
                ClusterSpec(
                    identifier,
                    kind=kind,
                    engine=ENGINES[engine],
                    state=state,
                    data_api=data_api,
                    iam_auth=iam_auth,
                )
            ],
            timings=Timings(**{**FAST_TIMINGS, **(timings or {})}),
        )
        emu.start()
        started.append(emu)
        aws_conn_id = set_aws_connection(monkeypatch, emu)
        set_database_connection(
            monkeypatch,
            DB_CONN_ID,
            engine=engine,
            user=user or SUPERUSERS[engine],
            password=password,
            extra=conn_extra,
        )
        return EmulatedCluster(
            emu=emu,
            identifier=identifier,
            engine=engine,
            kind=kind,
            aws_conn_id=aws_conn_id,
            conn_id=DB_CONN_ID,
        )

    yield start
    for emu in started:
        emu.shutdown()


def context() -> dict[str, Any]:
    """A minimal task context: the adapters read nothing from it."""
    return {}


async def until(condition: Any, seconds: float = 10.0) -> None:
    """Wait, bounded by ``seconds``, until ``condition()`` holds (emulator state seen from outside).

    The emulator runs in other threads and offers no event to await, so this polls between
    event-loop turns; it synchronises on the condition, never on a fixed sleep.
    """

    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 -- no asyncio.Event exists for another thread's state
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), seconds)
