"""DAGs of the warm window's ``dag.test()`` runs (tests/task_groups/test_warm_window_runs.py).

One window around a two-task body on the cluster ``sales`` of the emulator, through the
connections the ``emulated`` fixture defines. The body's first task reads the cluster as RDS
describes it while the window holds it, and fails when the run's conf says ``{"fail": true}``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.providers.common.compat.sdk import DAG, task

from airflow_aurora_wake.core.hold import HOLD_TAG_PREFIX
from airflow_aurora_wake.task_groups.warm_window import AuroraServerlessWarmWindow

CLUSTER = "sales"
AWS_CONN_ID = "aws_emulator"
DB_CONN_ID = "aurora_db"
FLOOR = 2


def window_dag(dag_id: str, *, stop_if_started: bool) -> Any:
    """A DAG with one window and a body of two tasks."""
    with (
        DAG(
            dag_id,
            schedule=None,
            start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
            catchup=False,
            params={"fail": False},
        ) as dag,
        AuroraServerlessWarmWindow(
            "warm",
            db_cluster_identifier=CLUSTER,
            conn_id=DB_CONN_ID,
            aws_conn_id=AWS_CONN_ID,
            min_capacity=FLOOR,
            hold_for=timedelta(hours=1),
            stop_if_started=stop_if_started,
            ready_timeout=120,
        ),
    ):

        @task
        def etl(params: dict[str, Any] | None = None) -> dict[str, Any]:
            described = AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type="rds").conn.describe_db_clusters(
                DBClusterIdentifier=CLUSTER
            )["DBClusters"][0]
            if params and params.get("fail"):
                raise RuntimeError("the ETL failed, as the run's conf asked")
            return {
                "status": described["Status"],
                "scaling": described.get("ServerlessV2ScalingConfiguration"),
                "hold_tags": sorted(
                    tag["Key"]
                    for tag in described.get("TagList", [])
                    if tag["Key"].startswith(HOLD_TAG_PREFIX)
                ),
            }

        @task
        def report() -> str:
            return "reported"

        etl() >> report()
    return dag


warm_window = window_dag("warm_window", stop_if_started=False)
warm_window_stop = window_dag("warm_window_stop", stop_if_started=True)
