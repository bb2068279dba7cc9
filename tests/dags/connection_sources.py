"""A task in each place that looks an Airflow connection up, for tests/hooks/test_hook_connection_sources.py.

The wake operator (its connection nudge, on the paused cluster ``nudged``), the sensor's check
in the worker, poke mode and reschedule mode (on the warm cluster ``warm``), and the trigger (on
``deferring``, whose resume outlasts the check in the worker). Every task uses the AWS
connection ``aws_from_source`` and the database connection ``db_from_source``, which the test
stores in the source under test. The tasks are independent of each other.
"""

from __future__ import annotations

import pendulum

from airflow_aurora_wake.compat import DAG
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

AWS_CONN_ID = "aws_from_source"
DB_CONN_ID = "db_from_source"
CONNECTIONS = {"aws_conn_id": AWS_CONN_ID, "conn_id": DB_CONN_ID}

with DAG("connection_sources", schedule=None, start_date=pendulum.datetime(2025, 1, 1), catchup=False) as dag:
    AuroraServerlessWakeOperator(task_id="operator", db_cluster_identifier="nudged", **CONNECTIONS)
    AuroraServerlessReadySensor(
        task_id="worker_check", db_cluster_identifier="warm", timeout=120, **CONNECTIONS
    )
    for mode in ("poke", "reschedule"):
        AuroraServerlessReadySensor(
            task_id=f"{mode}_mode",
            db_cluster_identifier="warm",
            deferrable=False,
            mode=mode,
            poke_interval=1,
            timeout=120,
            **CONNECTIONS,
        )
    AuroraServerlessReadySensor(
        task_id="trigger", db_cluster_identifier="deferring", timeout=120, **CONNECTIONS
    )
