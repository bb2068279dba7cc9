"""The Airflow half of ``airflow-aurora-wake demo``: runs in its own process, imports Airflow.

``python -m airflow_aurora_wake.demo.runner SPEC.json`` runs the example DAG once per cluster
with ``dag.test()`` (the sensor's trigger runs inline), in the throwaway ``AIRFLOW_HOME`` that
the demo prepared in this process's environment. After each run it writes the records the
demo's timeline is built from, read from Airflow's own metadata database: the DAG run's
state, each task instance's state, start and end, and the tasks' return values (XCom).

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


def _records(dag_id: str, run_id: str) -> dict[str, Any]:
    """Task instances and return values of one DAG run, from Airflow's metadata database."""
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
        for ti in session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ):
            tasks[ti.task_id] = {
                "state": str(getattr(ti.state, "value", ti.state)),
                "start": _epoch(ti.start_date),
                "end": _epoch(ti.end_date),
            }
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
