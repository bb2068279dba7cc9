"""The throwaway world the example DAG runs in: the demo's folder, the emulator and its clusters,
the Airflow connections, and the child processes' environment.

The emulator (and with it moto) is imported only when :func:`new_emulator` is called.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_aurora_wake.demo.engines import EngineSetup
from airflow_aurora_wake.demo.example_dag import DEFAULT_DAG, DemoDag

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator import AuroraEmulator


class Folder:
    """The demo's temporary folder: the Airflow home, the DAGs folder, the logs, the runner's files.

    :param root: The folder.
    :param dag: The example DAG the demo runs.
    """

    def __init__(self, root: Path, dag: DemoDag = DEFAULT_DAG) -> None:
        self.root = root
        self.dag = dag
        #: The throwaway ``AIRFLOW_HOME``, and Airflow's SQLite metadata database in it.
        self.home = root / "airflow-home"
        self.db_path = self.home / "airflow.db"
        #: The DAGs folder, holding a copy of the example DAG.
        self.dags = root / "dags"
        self.dag_file = self.dags / dag.file.name
        #: The logs: the emulator's (and its web server's), ``airflow db migrate``'s, the runner's.
        self.emulator_log = root / "emulator.log"
        self.migrate_log = root / "airflow-db-migrate.log"
        self.dags_log = root / "dag-test.log"
        #: What the runner runs (see :mod:`airflow_aurora_wake.demo.runner`), and its records.
        self.spec = root / "runs.json"
        self.results = root / "results.json"

    def prepare(self) -> None:
        """Create the Airflow home and the DAGs folder, and copy the example DAG in."""
        self.home.mkdir()
        self.dags.mkdir()
        shutil.copyfile(self.dag.file, self.dag_file)

    def write_spec(self, engines: Sequence[EngineSetup]) -> None:
        """Tell the runner to run the example DAG once per engine, against its cluster.

        :param engines: The engines, in the order to run them.
        """
        runs = [
            {
                "label": engine.label,
                "env": {
                    "AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CLUSTER": engine.cluster,
                    "AIRFLOW_VAR_AURORA_WAKE_EXAMPLE_CONN_ID": engine.kind.conn_id,
                },
            }
            for engine in engines
        ]
        spec = {"dag_file": str(self.dag_file), "results": str(self.results), "runs": runs}
        self.spec.write_text(json.dumps(spec))

    def read_results(self) -> list[dict[str, Any]]:
        """The runner's records (``[]`` when it wrote none)."""
        return json.loads(self.results.read_text()) if self.results.exists() else []


def log_emulator_to(log_path: Path) -> Callable[[], None]:
    """Send the emulator's (and its web server's) log lines to a file; return the undo."""
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    undo = []
    for name in ("airflow_aurora_wake", "werkzeug"):
        logger = logging.getLogger(name)
        undo.append((logger, logger.propagate, logger.level))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.INFO)

    def restore() -> None:
        for logger, propagate, level in undo:
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)
        handler.close()

    return restore


def new_emulator(
    engines: Sequence[EngineSetup], resume_seconds: float, idle_seconds: int = DEFAULT_DAG.idle_seconds
) -> AuroraEmulator:
    """An emulator (not started) with a paused Serverless v2 cluster in front of each server.

    :param engines: The engines.
    :param resume_seconds: How long a resume takes.
    :param idle_seconds: The clusters' ``SecondsUntilAutoPause``: idle time before they pause again.
    """
    from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings

    clusters = []
    for engine in engines:
        server = engine.server
        upstream = f"{server.engine}://{server.host}:{server.port}/{server.database}"
        clusters.append(
            ClusterSpec(
                engine.cluster,
                kind="serverless-v2",
                engine=engine.kind.aurora_engine,
                upstream=upstream,
                state="paused",
                seconds_until_auto_pause=idle_seconds,
            )
        )
    return AuroraEmulator(clusters, timings=Timings(resume_seconds=resume_seconds))


def airflow_connections(emu: AuroraEmulator, engines: Sequence[EngineSetup]) -> dict[str, dict[str, Any]]:
    """The Airflow connections, in their JSON form: ``aws_default`` and one per emulated cluster.

    :param emu: The running emulator.
    :param engines: The engines.
    """
    connections: dict[str, dict[str, Any]] = {
        "aws_default": {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": emu.endpoint_url, "region_name": emu.region},
        }
    }
    for engine in engines:
        endpoint = emu.cluster(engine.cluster)
        fields: dict[str, Any] = {
            "conn_type": engine.kind.conn_type,
            "host": endpoint.host,
            "port": endpoint.port,
            "login": engine.server.user,
            "schema": engine.server.database,
        }
        if engine.server.password:
            fields["password"] = engine.server.password
        connections[engine.kind.conn_id] = fields
    return connections


def child_environment(
    folder: Folder, aws_env: dict[str, str], connections: dict[str, dict[str, Any]]
) -> dict[str, str]:
    """The children's environment: this one without any Airflow or AWS setting, plus the demo's.

    The user's own ``AIRFLOW__*`` configuration (a production metadata database, say),
    connections, Variables and AWS credentials or profiles never reach the demo's Airflow.

    :param folder: The demo's folder (Airflow home, DAGs folder).
    :param aws_env: The emulator's AWS variables (endpoint, test credentials, region).
    :param connections: Connection id to its JSON form.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "_AIRFLOW", "AWS_"))
    }
    env.update(
        {
            "AIRFLOW_HOME": str(folder.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{folder.db_path}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(folder.home / "logs"),
            "AWS_CONFIG_FILE": str(folder.home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(folder.home / "no-aws-credentials"),
            "PYTHONUNBUFFERED": "1",
            **aws_env,
        }
    )
    for conn_id, fields in connections.items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(fields)
    return env
