"""
Wait until the reader endpoint of an Aurora cluster answers, then read from it.

``wake >> ready >> read_report``:

- ``wake`` sends the wake that fits the cluster and, for ``instances="reader"``, the same short
  connection attempt to its reader endpoint: Serverless v2 readers in failover tiers 2-15 pause
  on their own, apart from the writer, and would still be asleep when the writer is up;
- ``ready`` checks once, then defers until ``SELECT 1`` succeeds through the cluster's reader
  endpoint (``ReaderEndpoint`` from ``DescribeDBClusters``), not the writer: no worker slot
  while the reader resumes. On a cluster without a reader, AWS routes the reader endpoint to
  the writer, and the sensor's XCom ``note`` says so;
- ``read_report`` is the common SQL provider's ``SQLExecuteQueryOperator`` on the reader
  endpoint: it counts the tables the database user can see and returns the number.

Configured by Airflow connections and Variables only (the same file runs against real AWS and
against this project's emulator):

- Connection ``aws_default`` (type ``aws``): credentials allowed to call
  ``rds:DescribeDBClusters`` (and ``rds:ModifyCurrentDBClusterCapacity`` /
  ``rds:StartDBCluster`` for v1 and stopped clusters), with ``region_name`` in its extra. For
  the emulator: login ``testing``, password ``testing``, extra
  ``{"endpoint_url": "http://127.0.0.1:PORT", "region_name": "us-east-1"}``.
- Variable ``aurora_wake_example_cluster``: the DB cluster identifier (or ARN).
- Connection ``aurora_pg_reader`` (type ``postgres``), or the connection named by the optional
  Variable ``aurora_wake_example_reader_conn_id`` (for example a ``mysql`` one for Aurora
  MySQL): the database through the cluster's reader endpoint: its host is the reader endpoint
  (``NAME.cluster-ro-....rds.amazonaws.com``; the emulator prints its ``reader_host``), its
  port the cluster's, login, password (or extra ``{"iam": true}``) and schema. The user only
  needs to read.

Needs ``apache-airflow-providers-postgres`` (PostgreSQL) or ``apache-airflow-providers-mysql``
(MySQL) for the SQL step.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[no-redef]

from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

CLUSTER = "{{ var.value.aurora_wake_example_cluster }}"
READER_CONN_ID = "{{ var.value.get('aurora_wake_example_reader_conn_id', 'aurora_pg_reader') }}"


def table_count(cursor: Any) -> int:
    """Return the count the ``SELECT`` read, as a plain integer for the XCom.

    :param cursor: The DB-API cursor after the ``SELECT``.
    """
    row = cursor.fetchone()
    if row is None:
        raise ValueError("the reader returned no row for SELECT COUNT(*)")
    return int(row[0])


with DAG(
    dag_id="example_aurora_reader_endpoint",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "aurora", "reader"],
    doc_md=__doc__,
) as dag:
    wake = AuroraServerlessWakeOperator(
        task_id="wake",
        db_cluster_identifier=CLUSTER,
        aws_conn_id="aws_default",
        conn_id=READER_CONN_ID,
        instances="reader",
    )

    ready = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=CLUSTER,
        aws_conn_id="aws_default",
        conn_id=READER_CONN_ID,
        instances="reader",
        deferrable=True,
        timeout=600,
    )

    read_report = SQLExecuteQueryOperator(
        task_id="read_report",
        conn_id=READER_CONN_ID,
        sql="SELECT COUNT(*) FROM information_schema.tables",
        handler=table_count,
    )

    wake >> ready >> read_report
