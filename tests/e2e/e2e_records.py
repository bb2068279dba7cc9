"""Airflow's own records of an end-to-end deployment, read the way Airflow wrote them.

:class:`AirflowRecords` reads the SQLite metadata database (read-only: the test never writes
Airflow's state behind its back), decrypts trigger kwargs with the deployment's Fernet key, and
reads task logs from the deployment's log folder. :class:`~e2e_airflow.AirflowDeployment`
inherits it, so a test calls ``airflow.task_instances(...)`` on the deployment itself.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class AirflowRecords:
    """What a deployment's Airflow recorded: DAG runs, task instances, triggers, XComs, task logs.

    The class using it provides ``home``, the ``AIRFLOW_HOME``.
    """

    home: Path

    @property
    def database_path(self) -> Path:
        """The SQLite metadata database."""
        return self.home / "airflow.db"

    @property
    def fernet_key(self) -> str:
        """The Fernet key Airflow encrypts connections and trigger kwargs with."""
        return "a3Bq9XwJm5cT1kVn8pL0sR2yU4eH6gZ7dF3iO5tW9xM="

    def query(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        """Run a read-only query on the metadata database.

        :param sql: The query.
        :param params: Its ``?`` parameters.
        """
        connection = sqlite3.connect(f"file:{self.database_path}?mode=ro", uri=True, timeout=30)
        try:
            connection.row_factory = sqlite3.Row
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, sqlite3.Row]:
        """The run's task instances by task id (state, try_number, trigger_id, trigger_timeout...)."""
        rows = self.query(
            "SELECT * FROM task_instance WHERE dag_id = ? AND run_id = ? AND map_index = -1", dag_id, run_id
        )
        return {row["task_id"]: row for row in rows}

    def dag_run_state(self, dag_id: str, run_id: str) -> str | None:
        """The run's state, or ``None`` before the run exists."""
        rows = self.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", dag_id, run_id)
        return rows[0]["state"] if rows else None

    def trigger(self, trigger_id: int) -> dict[str, Any] | None:
        """One ``trigger`` row with its kwargs decrypted as the triggerer sees them."""
        rows = self.query("SELECT * FROM trigger WHERE id = ?", trigger_id)
        if not rows:
            return None
        row = dict(rows[0])
        row["kwargs"] = self.decrypt_trigger_kwargs(row["kwargs"])
        return row

    def decrypt_trigger_kwargs(self, stored: str) -> dict[str, Any]:
        """Decrypt a trigger's stored kwargs (Fernet over JSON of Airflow's serde form)."""
        from airflow.sdk.serde import deserialize
        from cryptography.fernet import Fernet

        text = stored if stored.startswith("{") else Fernet(self.fernet_key.encode()).decrypt(stored).decode()
        kwargs = deserialize(json.loads(text))
        assert isinstance(kwargs, dict)
        return kwargs

    def triggerer_job_ids(self) -> list[int]:
        """Ids of every triggerer job that ever started, oldest first."""
        return [
            row["id"] for row in self.query("SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")
        ]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """A task's ``return_value`` XCom (JSON), or ``None``."""
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = 'return_value'",
            dag_id,
            run_id,
            task_id,
        )
        if not rows:
            return None
        value = rows[0]["value"]
        return json.loads(value) if isinstance(value, str | bytes) else value

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, *, triggerer_id: int | None = None
    ) -> str | None:
        """One try's task log as the worker wrote it, or its trigger's log as a triggerer wrote it.

        Airflow's default log file layout; a triggerer writes beside the task's log, with its job
        id in the name.

        :param dag_id: The DAG.
        :param run_id: The run.
        :param task_id: The task (with its group prefix).
        :param try_number: The try (1 for the first).
        :param triggerer_id: The triggerer job whose log of the try's trigger is wanted.
        :returns: The text, or ``None`` while the file does not exist.
        """
        name = f"attempt={try_number}.log"
        if triggerer_id is not None:
            name += f".trigger.{triggerer_id}.log"
        path = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}" / name
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return None


def epoch(recorded: str | None) -> float:
    """A timestamp of Airflow's records (``start_date``, ``end_date``...) as epoch seconds.

    Airflow stores UTC; SQLite keeps it as text, with or without its offset.

    :param recorded: The column's value.
    :raises AssertionError: When the column is empty.
    """
    assert recorded is not None, "the record has no timestamp yet"
    when = datetime.fromisoformat(recorded)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()
