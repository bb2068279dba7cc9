"""Airflow test harness for the adapter tests (hooks, operators, sensors, triggers, example DAGs).

Importing this module, before anything imports ``airflow``, points Airflow at a temporary
``AIRFLOW_HOME`` for the whole session (SQLite metadata database inside it, unit-test mode, no
example DAGs, the project's ``example_dags`` as DAGs folder and ``tests/dags`` as a second
bundle, Airflow's local-filesystem secrets backend with an empty connections file). Each
adapter test folder's ``conftest.py`` imports it first. Connections come from
``AIRFLOW_CONN_<ID>`` environment variables in JSON form, set per test with ``monkeypatch``;
tests/hooks/test_hook_connection_sources.py also stores them in the metadata database and the
secrets backend.

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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DAGS_FOLDER = REPO_ROOT / "example_dags"
#: DAGs that only the tests run; a second DAG bundle on Airflow 3, whose ``dag.test()`` runs
#: only DAGs found in a bundle.
TEST_DAGS_FOLDER = REPO_ROOT / "tests" / "dags"

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
#: Connections served by Airflow's local-filesystem secrets backend, which the whole session
#: configures as users configure a secrets backend; empty but while a test stores one there.
SECRETS_BACKEND_CONNECTIONS = Path(AIRFLOW_HOME) / "secrets-backend-connections.json"
if not SECRETS_BACKEND_CONNECTIONS.exists():
    SECRETS_BACKEND_CONNECTIONS.write_text("{}")
AIRFLOW_ENV["AIRFLOW__SECRETS__BACKEND"] = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
AIRFLOW_ENV["AIRFLOW__SECRETS__BACKEND_KWARGS"] = json.dumps(
    {"connections_file_path": str(SECRETS_BACKEND_CONNECTIONS)}
)
_LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
AIRFLOW_ENV["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {"name": "dags-folder", "classpath": _LOCAL_BUNDLE, "kwargs": {}},
        {"name": "test-dags", "classpath": _LOCAL_BUNDLE, "kwargs": {"path": str(TEST_DAGS_FOLDER)}},
    ]
)
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


def plant_hold(emu: Any, identifier: str, request: Any, *, since: float) -> None:
    """Hold a cluster through the core as a holder whose clock said ``since`` (a past hold).

    A hold taken two hours ago for one hour is one whose run died before its release.

    :param emu: The running emulator.
    :param identifier: The cluster.
    :param request: The :class:`~airflow_aurora_wake.core.hold.HoldRequest`.
    :param since: The holder's clock (epoch seconds).
    """
    from aiobotocore.session import get_session

    from airflow_aurora_wake.core.hold import hold_cluster

    async def hold_then() -> None:
        async with get_session().create_client(
            "rds",
            region_name=emu.region,
            endpoint_url=emu.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ) as rds:
            await hold_cluster(rds, identifier, request, clock=lambda: since)

    asyncio.run(hold_then())


# --------------------------------------------------------------------------- DAG runs
def load_module(path: Path) -> Any:
    """Import a DAG file as a fresh module (its DAGs built anew) and return the module.

    :param path: The DAG file, in the DAGs folder or ``tests/dags`` (Airflow 3's ``dag.test()``
        runs only DAGs of a bundle).
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dag(path: Path) -> Any:
    """Import a DAG file as a fresh module and return its ``dag``.

    :param path: The DAG file (see :func:`load_module`).
    """
    return load_module(path).dag


@pytest.fixture
def trigger_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Record the kwargs of every readiness trigger that runs (proof that the sensor deferred)."""
    from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

    runs: list[dict[str, Any]] = []
    original_run = AuroraServerlessReadyTrigger.run

    async def spy_run(self: Any) -> AsyncIterator[Any]:
        runs.append(self.serialize()[1])
        async for event in original_run(self):
            yield event

    monkeypatch.setattr(AuroraServerlessReadyTrigger, "run", spy_run)
    yield runs


#: A resume or start that lasts until the test ends it (see :func:`end_the_resume_once_deferred`).
UNTIL_ENDED = 600.0


def end_the_resume_once_deferred(monkeypatch: pytest.MonkeyPatch, emu: Any, identifier: str) -> None:
    """End a cluster's (long) resume or start when the readiness trigger starts, not before.

    The sensor's check in the worker then meets the resume whatever the machine's load, so it
    defers; the trigger's probe finds the cluster ready. Use with :data:`UNTIL_ENDED` timings,
    after :func:`trigger_runs` if both are used.

    :param monkeypatch: The test's monkeypatch.
    :param emu: The emulator.
    :param identifier: The cluster.
    """
    from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

    current_run = AuroraServerlessReadyTrigger.run

    async def run_after_the_resume(self: Any) -> AsyncIterator[Any]:
        emu.wake(identifier)
        async for event in current_run(self):
            yield event

    monkeypatch.setattr(AuroraServerlessReadyTrigger, "run", run_after_the_resume)


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


#: The ETL table of ``example_aurora_serverless_wake`` and the rows one run writes to it.
SALES_TABLE = "aurora_wake_example_sales"
SALES_ROWS = [["apples", 3], ["bread", 2], ["coffee", 5]]


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
