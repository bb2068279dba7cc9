"""The DAGs of the zero-wait-starts benchmark (``bench/prewake.py``): one pipeline per cluster.

Each pipeline, ``ready >> select_1`` (the deferrable ready sensor, then ``SELECT 1`` through
``SQLExecuteQueryOperator``, the first SQL task), runs every ``period_seconds`` on its own paused
Serverless v2 cluster. A scenario with ``prewake`` settings also gets its companion from
``aurora_prewake_dag``. The benchmark puts the plan (:func:`make_plan`) as JSON in
``AURORA_WAKE_BENCH_PREWAKE_PLAN`` before the DAG processor starts: each pipeline's start and end
dates bound it to the runs the benchmark waits for. Without that variable the file defines no
DAG. Airflow is imported only to build the DAGs, so the benchmark can read the plan without it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any

PLAN_VARIABLE = "AURORA_WAKE_BENCH_PREWAKE_PLAN"
#: Far beyond a resume: no wait of the benchmark ends by a timeout.
SENSOR_TIMEOUT = 600.0
#: The pool that holds back C's pre-wake of its run HELD_RUN (see ``bench/prewake.py``).
HELD_POOL = "zero_wait_held"
HELD_RUN = 3
#: Each pipeline starts ``offset`` s into the period, chosen so that no run's first task starts
#: within 7 s of another task's start (a pre-wake's, or another pipeline's). ``trigger``: what
#: Airflow 3 makes of ``schedule=timedelta(...)`` (or a cron string) by default, a trigger
#: timetable (a run's logical date is its start); ``interval``: a data-interval timetable (a
#: run's logical date is one period before its start).
SCENARIOS: tuple[dict[str, Any], ...] = (
    {"key": "A", "what": "pre-wake, lead 30 s", "offset": 85.0, "goal": True, "timetable": "trigger",
     "prewake": {"lead_time": 30.0, "max_lead_time": 30.0}},
    {"key": "B", "what": "no pre-wake (baseline)", "offset": 0.0, "goal": False, "timetable": "trigger",
     "prewake": None},
    {"key": "C", "what": f"pre-wake, lead 5 s (too short); run {HELD_RUN}'s pre-wake held back by a pool",
     "offset": 65.0, "goal": False, "timetable": "trigger",
     "prewake": {"lead_time": 5.0, "max_lead_time": 25.0, "pool": HELD_POOL}},
    {"key": "D", "what": "pre-wake, learned lead (at most 60 s)", "offset": 15.0, "goal": True,
     "timetable": "trigger", "prewake": {"lead_time": None, "max_lead_time": 60.0}},
    {"key": "E", "what": "pre-wake, lead 30 s, on a data-interval timetable", "offset": 30.0,
     "goal": True, "timetable": "interval", "prewake": {"lead_time": 30.0, "max_lead_time": 30.0}},
)  # fmt: skip


def make_plan(first_run: float, *, period: float, runs: int) -> dict[str, Any]:
    """Each scenario's pipeline, companion, cluster, connection and first run.

    :param first_run: epoch seconds of the earliest first run (B's); the others are staggered.
    :param period: seconds between two runs of a pipeline.
    :param runs: runs per pipeline.
    """
    scenarios = []
    for scenario in SCENARIOS:
        name = f"zero_wait_{scenario['key'].lower()}"
        scenarios.append(
            {
                **scenario,
                "dag_id": name,
                "companion_dag_id": f"{name}__aurora_prewake" if scenario["prewake"] else None,
                "cluster": name.replace("_", "-"),
                "conn_id": name,
                "first_run": first_run + scenario["offset"],
            }
        )
    return {"period_seconds": period, "runs": runs, "scenarios": scenarios}


def build(plan: dict[str, Any]) -> dict[str, Any]:
    """The pipelines and companions of ``plan``, by dag id.

    :param plan: what :func:`make_plan` returned.
    """
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
    from airflow.sdk import DAG, DeltaDataIntervalTimetable

    from airflow_aurora_wake.dag_factories.prewake import aurora_prewake_dag
    from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

    period = timedelta(seconds=plan["period_seconds"])
    dags: dict[str, Any] = {}
    for scenario in plan["scenarios"]:
        first = datetime.fromtimestamp(scenario["first_run"], tz=timezone.utc)
        # Both run at first + k * period, to the second (staggered by less than the minute a cron
        # expression could). A plain timedelta is what users write: Airflow 3 makes it a
        # DeltaTriggerTimetable. A data-interval run's start is its interval's end: start_date
        # and end_date bound the interval's start, one period earlier.
        if scenario["timetable"] == "trigger":
            schedule: Any = period
        else:
            schedule, first = DeltaDataIntervalTimetable(period), first - period
        with DAG(
            dag_id=scenario["dag_id"],
            schedule=schedule,
            start_date=first,
            end_date=first + period * (plan["runs"] - 1),
            catchup=False,
            tags=["bench", "prewake"],
        ) as pipeline:
            ready = AuroraServerlessReadySensor(
                task_id="ready",
                db_cluster_identifier=scenario["cluster"],
                conn_id=scenario["conn_id"],
                deferrable=True,
                timeout=SENSOR_TIMEOUT,
            )
            ready >> SQLExecuteQueryOperator(task_id="select_1", conn_id=scenario["conn_id"], sql="SELECT 1")
        dags[pipeline.dag_id] = pipeline
        settings = scenario["prewake"]
        if settings is not None:
            companion = aurora_prewake_dag(
                pipeline,
                db_cluster_identifier=scenario["cluster"],
                conn_id=scenario["conn_id"],
                lead_time=settings["lead_time"],
                max_lead_time=settings["max_lead_time"],
                **({"pool": settings["pool"]} if settings.get("pool") else {}),
            )
            dags[companion.dag_id] = companion
    return dags


if os.environ.get(PLAN_VARIABLE):
    # Module-level names are what the DAG processor collects.
    globals().update(build(json.loads(os.environ[PLAN_VARIABLE])))
