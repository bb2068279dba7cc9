"""
Wake a sleeping Aurora cluster, wait (deferred, in the triggerer) for a real connection, run an ETL.

``wake >> ready >> create_table >> load_rows >> read_back``:

- ``wake`` sends the wake request that fits the cluster (a connection nudge for Serverless v2
  with auto-pause, a capacity request for v1, ``StartDBCluster`` for a stopped cluster) and
  returns at once;
- ``ready`` checks once, then defers until a real ``SELECT 1`` succeeds: no worker slot while
  the cluster resumes. A wrong password, an unknown cluster or connection fail it at once;
- ``create_table``, ``load_rows`` and ``read_back`` are the common SQL provider's
  ``SQLExecuteQueryOperator`` on the now-warm database: they create the table
  ``aurora_wake_example_sales(run_id VARCHAR(250), item VARCHAR(100), amount INTEGER)`` if it
  is missing, replace this DAG run's rows with 3 rows tagged with the run's ``run_id``, and read
  them back. ``read_back`` fails unless it gets exactly those 3 rows; its XCom is the rows,
  ``[[item, amount], ...]`` ordered by item.

Configured by Airflow connections and Variables only (the same file runs against real AWS and
against this project's emulator):

- Connection ``aws_default`` (type ``aws``): credentials allowed to call
  ``rds:DescribeDBClusters`` (and ``rds:ModifyCurrentDBClusterCapacity`` /
  ``rds:StartDBCluster`` for v1 and stopped clusters), with ``region_name`` in its extra. For
  the emulator (``airflow-aurora-wake emulator`` prints its ``endpoint_url``): login
  ``testing``, password ``testing``, extra
  ``{"endpoint_url": "http://127.0.0.1:PORT", "region_name": "us-east-1"}``.
- Variable ``aurora_wake_example_cluster``: the DB cluster identifier (or ARN). Any kind of
  Aurora cluster works: Serverless v2 with auto-pause, Serverless v1, provisioned (stopped or
  not).
- Connection ``aurora_pg`` (type ``postgres``), or the connection named by the optional Variable
  ``aurora_wake_example_conn_id`` (for example a ``mysql`` one for Aurora MySQL): the database,
  with its host and port set to the cluster's writer endpoint (the SQL steps connect with it;
  the sensor alone would also accept an empty host), login, password (or extra
  ``{"iam": true}`` for IAM database authentication) and schema (the database). The user must
  be allowed to create a table and write to it.

Needs ``apache-airflow-providers-postgres`` (PostgreSQL) or ``apache-airflow-providers-mysql``
(MySQL) for the SQL steps.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.sql.hooks.handlers import fetch_all_handler
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from airflow_aurora_wake.compat import DAG
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

CLUSTER = "{{ var.value.aurora_wake_example_cluster }}"
CONN_ID = "{{ var.value.get('aurora_wake_example_conn_id', 'aurora_pg') }}"
TABLE = "aurora_wake_example_sales"
ROWS = (("apples", 3), ("bread", 2), ("coffee", 5))


def expect_three_rows(cursor: Any) -> list[Any]:
    """Fetch the rows read back and fail the task unless there are exactly the 3 loaded.

    :param cursor: The DB-API cursor after the ``SELECT``.
    """
    rows = fetch_all_handler(cursor) or []
    if len(rows) != len(ROWS):
        raise ValueError(
            f"read back {len(rows)} rows of this run from {TABLE}, expected {len(ROWS)}: {rows!r}"
        )
    return [list(row) for row in rows]  # lists, not tuples: plain JSON in the XCom


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

    create_table = SQLExecuteQueryOperator(
        task_id="create_table",
        conn_id=CONN_ID,
        sql=f"CREATE TABLE IF NOT EXISTS {TABLE} (run_id VARCHAR(250), item VARCHAR(100), amount INTEGER)",
    )

    # Idempotent: a retry or a re-run of the same DAG run replaces its own rows.
    load_rows = SQLExecuteQueryOperator(
        task_id="load_rows",
        conn_id=CONN_ID,
        sql=[
            f"DELETE FROM {TABLE} WHERE run_id = %(run_id)s",
            f"INSERT INTO {TABLE} (run_id, item, amount) VALUES "
            + ", ".join(f"(%(run_id)s, '{item}', {amount})" for item, amount in ROWS),
        ],
        parameters={"run_id": "{{ run_id }}"},
    )

    read_back = SQLExecuteQueryOperator(
        task_id="read_back",
        conn_id=CONN_ID,
        sql=f"SELECT item, amount FROM {TABLE} WHERE run_id = %(run_id)s ORDER BY item",
        parameters={"run_id": "{{ run_id }}"},
        handler=expect_three_rows,
    )

    wake >> ready >> create_table >> load_rows >> read_back
