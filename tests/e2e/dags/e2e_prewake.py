"""A pipeline on Airflow 3's default timetable and its pre-wake companion, for the pre-wake end-to-end test.

``ready >> select_1`` (the deferrable ready sensor, then ``SELECT 1``) with
``schedule="* * * * *"``, which Airflow 3 turns into a ``CronTriggerTimetable`` (a run's logical
date is its start), on the cluster named by the Variable
``aurora_wake_example_cluster``, through the connections ``aws_default`` and ``aurora_pg``; and
its companion from ``aurora_prewake_dag``: each companion run starts ``MAX_LEAD`` before a
pipeline run and wakes the cluster ``LEAD`` before it.

The test puts the first run's start (epoch seconds, a whole minute) in
``AURORA_WAKE_E2E_PREWAKE_FIRST_RUN``
before it starts Airflow; the start and end dates bound the pipeline to ``RUNS`` runs from
then. Without that variable the file defines no DAG. The end-to-end test
(``tests/e2e/test_e2e_prewake.py``) imports this file's constants.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG

from airflow_aurora_wake.dag_factories.prewake import aurora_prewake_dag
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

DAG_ID = "e2e_prewake"
COMPANION_DAG_ID = f"{DAG_ID}__aurora_prewake"
FIRST_RUN_VARIABLE = "AURORA_WAKE_E2E_PREWAKE_FIRST_RUN"
#: A cron string, as users write it: Airflow 3 makes it a trigger timetable. Its runs stay on
#: the minute; a timedelta's run moves to the moment of a re-parse that comes between its start
#: and its creation (catchup=False), away from the run its pre-wake prepared.
SCHEDULE = "* * * * *"
#: The schedule's period.
PERIOD = timedelta(minutes=1)
#: The first run, and a second one in case the DAGs are parsed after the first one's pre-wake
#: was due (the test then uses the second).
RUNS = 2
#: The wake goes out this long before each run: the emulated resume (8 s) and the scheduler's
#: hops (the pre-wake resumes after its time trigger, then after its readiness trigger), with room.
LEAD = timedelta(seconds=25)
#: Each companion run starts this long before its pipeline run, so it waits for the wake time
#: in the triggerer, as it does in production.
MAX_LEAD = timedelta(seconds=40)
CLUSTER = "{{ var.value.aurora_wake_example_cluster }}"
AWS_CONN_ID = "aws_default"
CONN_ID = "aurora_pg"
#: Far beyond the test's own run: no wait ends by a timeout.
TIMEOUT = timedelta(minutes=10)

if os.environ.get(FIRST_RUN_VARIABLE):
    first_run = datetime.fromtimestamp(float(os.environ[FIRST_RUN_VARIABLE]), tz=timezone.utc)
    with DAG(
        dag_id=DAG_ID,
        schedule=SCHEDULE,
        start_date=first_run,
        end_date=first_run + PERIOD * (RUNS - 1),
        catchup=False,
        default_args={"retries": 0},
        tags=["e2e"],
    ) as dag:
        ready = AuroraServerlessReadySensor(
            task_id="ready",
            db_cluster_identifier=CLUSTER,
            conn_id=CONN_ID,
            aws_conn_id=AWS_CONN_ID,
            deferrable=True,
            timeout=TIMEOUT.total_seconds(),
        )
        ready >> SQLExecuteQueryOperator(task_id="select_1", conn_id=CONN_ID, sql="SELECT 1")

    prewake = aurora_prewake_dag(
        dag,
        db_cluster_identifier=CLUSTER,
        conn_id=CONN_ID,
        aws_conn_id=AWS_CONN_ID,
        lead_time=LEAD,
        max_lead_time=MAX_LEAD,
        timeout=TIMEOUT.total_seconds(),
    )
