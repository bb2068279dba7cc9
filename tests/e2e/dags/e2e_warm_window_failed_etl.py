"""A warm window around an ETL that fails: the release, its teardown, must still give the cluster back.

``warm.hold >> warm.ready >> warm.hold_floor >> warm.observe >> warm.load >> warm.release`` on
the cluster named by the Variable ``aurora_wake_example_cluster``, through the connections
``aws_default`` and ``aurora_pg``. ``observe`` returns the cluster as RDS describes it while the
window holds it (status, scaling, hold tags); ``load`` writes to a table that does not exist, so
the database refuses it and the task fails, with no retry. The end-to-end test
(``tests/e2e/test_e2e_warm_window.py``) imports this file's constants.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, task

from airflow_aurora_wake.core.hold import HOLD_TAG_PREFIX
from airflow_aurora_wake.task_groups.warm_window import AuroraServerlessWarmWindow

DAG_ID = "e2e_warm_window_failed_etl"
WINDOW_ID = "warm"
#: The floor and the ceiling the window holds: the cluster's own range is 0 to 4 ACUs.
FLOOR = 2.0
CEILING = 8.0
#: No database has it: the ETL's insert fails with the database's own error.
MISSING_TABLE = "aurora_wake_e2e_no_such_table"
CLUSTER = "{{ var.value.aurora_wake_example_cluster }}"
AWS_CONN_ID = "aws_default"
CONN_ID = "aurora_pg"

with (
    DAG(
        dag_id=DAG_ID,
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        # A failed ETL task must fail the run at once: no retry to wait for.
        default_args={"retries": 0},
        tags=["e2e"],
    ) as dag,
    AuroraServerlessWarmWindow(
        WINDOW_ID,
        db_cluster_identifier=CLUSTER,
        conn_id=CONN_ID,
        aws_conn_id=AWS_CONN_ID,
        min_capacity=FLOOR,
        max_capacity=CEILING,
        hold_for=timedelta(hours=1),
        ready_timeout=timedelta(minutes=15),
    ),
):

    @task
    def observe(cluster: str) -> dict[str, Any]:
        """Return the cluster as RDS describes it now, inside the window.

        :param cluster: The DB cluster identifier.
        """
        described = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="rds").conn.describe_db_clusters(
            DBClusterIdentifier=cluster
        )["DBClusters"][0]
        return {
            "status": described["Status"],
            "scaling": described.get("ServerlessV2ScalingConfiguration"),
            "hold_tags": sorted(
                tag["Key"] for tag in described.get("TagList", []) if tag["Key"].startswith(HOLD_TAG_PREFIX)
            ),
        }

    load = SQLExecuteQueryOperator(
        task_id="load",
        conn_id=CONN_ID,
        sql=f"INSERT INTO {MISSING_TABLE} (run_id) VALUES (%(run_id)s)",
        parameters={"run_id": "{{ run_id }}"},
    )

    observe(CLUSTER) >> load
