"""A DAG whose tasks link to their cluster in the AWS console (tests/links/test_aurora_link.py).

``wake`` starts the stopped cluster ``STARTED``, ``ready`` waits for it (deferred: the start
takes longer than the check before deferring), ``hold`` and ``release`` bracket nothing on it;
``wake_ghost`` fails on a cluster that does not exist.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.operators.aurora_window import (
    AuroraServerlessHoldOperator,
    AuroraServerlessReleaseOperator,
)
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

AWS_CONN_ID = "aws_emulator"
DB_CONN_ID = "aurora_db"
#: Stopped: ``wake`` starts it.
STARTED = "links-started"
#: No such cluster.
GHOST = "links-ghost"

with DAG(
    "console_links", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False
) as dag:
    wake = AuroraServerlessWakeOperator(
        task_id="wake", db_cluster_identifier=STARTED, aws_conn_id=AWS_CONN_ID
    )
    ready = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=STARTED,
        aws_conn_id=AWS_CONN_ID,
        conn_id=DB_CONN_ID,
        describe_interval=0.5,
        timeout=60,
    )
    hold = AuroraServerlessHoldOperator(
        task_id="hold", db_cluster_identifier=STARTED, min_capacity=1, aws_conn_id=AWS_CONN_ID
    )
    release = AuroraServerlessReleaseOperator(
        task_id="release", db_cluster_identifier=STARTED, aws_conn_id=AWS_CONN_ID
    )
    wake >> ready >> hold >> release
    AuroraServerlessWakeOperator(task_id="wake_ghost", db_cluster_identifier=GHOST, aws_conn_id=AWS_CONN_ID)
