"""
Wake a sleeping Aurora cluster, wait (deferred, in the triggerer) for a real connection, run SQL.

``wake >> ready >> query``:

- ``wake`` sends the wake request that fits the cluster (a v1 capacity request, StartDBCluster
  for a stopped cluster, a connection nudge for Serverless v2) and returns at once;
- ``ready`` checks once, then defers until a real ``SELECT 1`` succeeds (no worker slot while
  waiting); a wrong password, an unknown cluster or connection fail it at once;
- ``query`` runs the pipeline's SQL on the now-warm database.

Configured by Airflow connections and Variables only:

- AWS connection ``aws_default`` (type ``aws``). To use the emulator of this project
  (``airflow-aurora-wake emulator`` prints its ``endpoint_url``), give it the extra
  ``{"endpoint_url": "http://127.0.0.1:PORT", "region_name": "us-east-1"}`` and the login
  ``testing`` / password ``testing``.
- Variable ``aurora_wake_example_cluster``: the DB cluster identifier (or ARN).
- Connection ``aurora_pg`` (type ``postgres``): the database. Leave its host empty to use the
  cluster's writer endpoint. Set the Variable ``aurora_wake_example_conn_id`` to use another
  connection instead (for example a ``mysql`` one for Aurora MySQL).

The SQL step uses ``psycopg`` or ``PyMySQL`` directly (the common-sql ``SQLExecuteQueryOperator``
would need the postgres/mysql providers).
"""

from __future__ import annotations

from typing import Any

import pendulum

from airflow_aurora_wake.compat import DAG, BaseHook, task
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

CLUSTER = "{{ var.value.aurora_wake_example_cluster }}"
CONN_ID = "{{ var.value.get('aurora_wake_example_conn_id', 'aurora_pg') }}"
QUERY = "SELECT COUNT(*) FROM information_schema.tables"

with DAG(
    dag_id="example_aurora_serverless_wake",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "aurora"],
    doc_md=__doc__,
) as dag:
    wake = AuroraServerlessWakeOperator(
        task_id="wake",
        db_cluster_identifier=CLUSTER,
        aws_conn_id="aws_default",
        conn_id=CONN_ID,
    )

    ready = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=CLUSTER,
        aws_conn_id="aws_default",
        conn_id=CONN_ID,
        deferrable=True,
        timeout=600,
    )

    @task
    def query(conn_id: str, ready_report: dict[str, Any]) -> dict[str, Any]:
        """Run the pipeline's SQL on the warm database (host from the ready report if unset)."""
        connection = BaseHook.get_connection(conn_id)
        host, _, port = str(ready_report["endpoint"]).rpartition(":")
        settings = {
            "host": connection.host or host,
            "port": int(connection.port or port),
            "user": connection.login,
            "password": connection.password or "",
        }
        if connection.conn_type == "mysql":
            import pymysql

            with pymysql.connect(database=connection.schema or None, **settings) as db, db.cursor() as cursor:
                cursor.execute(QUERY)
                (tables,) = cursor.fetchone()
        else:
            import psycopg

            with psycopg.connect(dbname=connection.schema or None, **settings) as db:
                (tables,) = db.execute(QUERY).fetchone()  # type: ignore[misc]
        return {"conn_type": connection.conn_type, "tables": int(tables)}

    wake >> ready >> query(CONN_ID, ready.output)
