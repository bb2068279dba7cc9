"""Deferred sensors whose connections come from each source users keep them in.

The end-to-end test stores each pair (AWS connection, database connection) in one source: the
metadata database (``airflow connections add``), ``AIRFLOW_CONN_*`` environment variables, and
Airflow's local-filesystem secrets backend. Each sensor defers while the cluster resumes, so its
trigger looks both connections up in the triggerer (and again in the triggerer that takes it
over after the first one is killed).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

#: Source -> (AWS connection id, database connection id), a contract with the test.
SOURCES = {
    "metadata": ("aws_metadata", "pg_metadata"),
    "env": ("aws_env", "pg_env"),
    "secrets": ("aws_secrets", "pg_secrets"),
}

with DAG(
    dag_id="e2e_connection_sources",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e"],
) as dag:
    for source, (aws_conn_id, conn_id) in SOURCES.items():
        AuroraServerlessReadySensor(
            task_id=f"ready_{source}",
            db_cluster_identifier="{{ var.value.aurora_wake_example_cluster }}",
            aws_conn_id=aws_conn_id,
            conn_id=conn_id,
            timeout=600,
        )
