"""The Airflow half of ``airflow-aurora-wake demo``: runs in its own process, imports Airflow.

``python -m airflow_aurora_wake.demo.runner SPEC.json`` runs the example DAG once per cluster
with ``dag.test()`` (the sensor's trigger runs inline), in the throwaway ``AIRFLOW_HOME`` that
the demo prepared in this process's environment. After each run it writes the records the
demo's timeline is built from, read from Airflow's own metadata database: the DAG run's
state, each task instance's state, start and end, its state changes from Airflow's audit log
(``running``, ``deferred``, ``success``... with their times), the trigger it deferred to (class
and creation time), and the tasks' return values (XCom).

The spec is a JSON object::

    {"dag_file": ".../example_aurora_serverless_wake.py",
     "results": ".../results.json",
     "runs": [{"label": "postgresql", "env": {"AIRFLOW_VAR_...": "..."}}, ...]}
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _epoch(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def _load_dag(dag_file: str) -> Any:
    spec = importlib.util.spec_from_file_location(Path(dag_file).stem, dag_file)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the DAG file {dag_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def _state_changes(session: Any, dag_id: str, run_id: str) -> dict[str, list[list[Any]]]:
    """Each task's state changes in Airflow's audit log (``log`` table), ``[[event, epoch], ...]``.

    Airflow writes a row when a task instance starts running and at each state it reports
    (``deferred``, ``success``...): the deferral and the resume are known from these, not from
    watching the task instance's state, which ``dag.test()`` holds ``deferred`` for milliseconds.
    An Airflow whose log has no ``run_id`` column gives none (the timeline then claims nothing
    about a deferral).
    """
    from airflow.models.log import Log
    from sqlalchemy import select

    if not hasattr(Log, "run_id"):
        return {}
    changes: dict[str, list[list[Any]]] = {}
    for task_id, event, dttm in session.execute(
        select(Log.task_id, Log.event, Log.dttm)
        .where(Log.dag_id == dag_id, Log.run_id == run_id, Log.task_id.is_not(None))
        .order_by(Log.dttm, Log.id)
    ):
        changes.setdefault(str(task_id), []).append([str(event), _epoch(dttm)])
    return changes


def _trigger(session: Any, trigger_id: int | None) -> dict[str, Any] | None:
    """The trigger a task instance deferred to: its class path and when it was created.

    ``dag.test()`` runs the trigger inline and leaves its row; a triggerer deletes it once no
    task instance needs it, so it may be gone.
    """
    from airflow.models.trigger import Trigger

    row = session.get(Trigger, trigger_id) if trigger_id is not None else None
    if row is None:
        return None
    return {"classpath": row.classpath, "created": _epoch(row.created_date)}


def _records(dag_id: str, run_id: str) -> dict[str, Any]:
    """Task instances, their state changes and return values of one DAG run, from Airflow's metadata DB."""
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

    tasks: dict[str, Any] = {}
    xcoms: dict[str, Any] = {}
    with create_session() as session:
        changes = _state_changes(session, dag_id, run_id)
        for ti in session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ):
            tasks[ti.task_id] = {
                "state": str(getattr(ti.state, "value", ti.state)),
                "start": _epoch(ti.start_date),
                "end": _epoch(ti.end_date),
                "trigger": _trigger(session, ti.trigger_id),
            }
            if changes:
                tasks[ti.task_id]["events"] = changes.get(ti.task_id, [])
        for row in session.scalars(
            select(XComTable).where(
                XComTable.dag_id == dag_id, XComTable.run_id == run_id, XComTable.key == "return_value"
            )
        ):
            xcoms[row.task_id] = _plain(row_value(row))
    return {"tasks": tasks, "xcoms": xcoms}


def main(argv: list[str]) -> int:
    """Run the example DAG once per cluster of the spec; write the records after each run.

    :param argv: ``[SPEC.json]``.
    """
    spec = json.loads(Path(argv[0]).read_text())
    results_path = Path(spec["results"])
    results: list[dict[str, Any]] = []
    status = 0
    for run_spec in spec["runs"]:
        os.environ.update(run_spec["env"])
        dag = _load_dag(spec["dag_file"])
        started = time.time()
        print(f"=== demo: dag.test() of {dag.dag_id} for {run_spec['label']}", flush=True)
        dag_run = dag.test()
        state = str(getattr(dag_run.state, "value", dag_run.state))
        record = {
            "label": run_spec["label"],
            "dag_id": dag.dag_id,
            "run_id": dag_run.run_id,
            "state": state,
            "started": started,
            "finished": time.time(),
            **_records(dag.dag_id, dag_run.run_id),
        }
        results.append(record)
        partial = results_path.with_suffix(".tmp")
        partial.write_text(json.dumps(results))
        partial.replace(results_path)
        if state != "success":
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
