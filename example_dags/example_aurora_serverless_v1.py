"""
Wake a legacy Aurora Serverless v1 cluster (paused at capacity 0), wait (deferred), then use it.

``wake >> ready >> check``:

- ``wake`` sees ``EngineMode == "serverless"`` with ``Capacity == 0`` and calls
  ``ModifyCurrentDBClusterCapacity`` with the smallest capacity valid for the engine and the
  cluster's range (``capacity=`` picks another), ``TimeoutAction=RollbackCapacityChange`` (never
  drops connections), then returns at once. A cluster already scaling is left alone;
- ``ready`` waits until ``Capacity > 0`` **and** a real ``SELECT 1`` succeeds (on v1 the
  capacity comes some seconds before connections work);
- ``check`` runs ``SELECT 1`` through the common SQL provider's ``SQLExecuteQueryOperator``.

Serverless v1 reached end of life on 2025-03-31; this DAG is for the clusters that remain (and
for the emulator). Serverless v2 clusters need nothing different: use
``example_aurora_serverless_wake``.

Configured by Airflow connections and Variables only:

- Connection ``aws_default`` (type ``aws``) allowed ``rds:DescribeDBClusters`` and
  ``rds:ModifyCurrentDBClusterCapacity``, with ``region_name`` in its extra. For the emulator:
  login ``testing``, password ``testing``, extra
  ``{"endpoint_url": "http://127.0.0.1:PORT", "region_name": "us-east-1"}``.
- Variable ``aurora_wake_v1_cluster``: the DB cluster identifier (or ARN) of a v1 cluster
  (``EngineMode=serverless``; the emulator: ``--cluster NAME:v1:mysql``).
- Connection ``aurora_mysql`` (type ``mysql``), or the one named by the optional Variable
  ``aurora_wake_v1_conn_id`` (a ``postgres`` one for Aurora PostgreSQL v1): host and port of the
  cluster endpoint, login, password and schema.

Needs ``apache-airflow-providers-mysql`` (or ``-postgres``) for ``check``.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from airflow_aurora_wake.compat import DAG
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

CLUSTER = "{{ var.value.aurora_wake_v1_cluster }}"
CONN_ID = "{{ var.value.get('aurora_wake_v1_conn_id', 'aurora_mysql') }}"

with DAG(
    dag_id="example_aurora_serverless_v1",
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
        seconds_before_timeout=300,
        timeout_action="RollbackCapacityChange",
    )

    ready = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=CLUSTER,
        aws_conn_id="aws_default",
        conn_id=CONN_ID,
        deferrable=True,
        timeout=600,
    )

    check = SQLExecuteQueryOperator(task_id="check", conn_id=CONN_ID, sql="SELECT 1")

    wake >> ready >> check
