"""
Start a stopped Aurora cluster, wait (deferred) until it accepts connections, then use it.

``wake >> ready >> check``:

- ``wake`` sees ``Status == "stopped"`` and calls ``StartDBCluster`` (a cluster already
  ``starting`` is left alone: the start is under way), then returns at once;
- ``ready`` defers at once (the cluster says ``starting`` for several minutes) and waits in
  the triggerer, describing the cluster every ``describe_interval`` seconds, until a real
  ``SELECT 1`` succeeds. A cluster that still says ``stopped`` ``stopped_grace`` seconds after
  the wait began fails it with a message (nobody started it);
- ``check`` runs ``SELECT 1`` through the common SQL provider's ``SQLExecuteQueryOperator``.

Starting a cluster takes minutes, so ``ready`` has a 30-minute timeout. A stopped cluster does
not wake on a connection attempt: only ``StartDBCluster`` starts it. AWS starts a stopped
cluster by itself after 7 days; to stop it again after your work, add the Amazon provider's
``RdsStopDbOperator(db_identifier=..., db_type="cluster")``.

Configured by Airflow connections and Variables only:

- Connection ``aws_default`` (type ``aws``) allowed ``rds:DescribeDBClusters`` and
  ``rds:StartDBCluster``, with ``region_name`` in its extra. For the emulator: login
  ``testing``, password ``testing``, extra
  ``{"endpoint_url": "http://127.0.0.1:PORT", "region_name": "us-east-1"}``.
- Variable ``aurora_wake_stopped_cluster``: the DB cluster identifier (or ARN) of a stopped
  cluster (any kind that can be stopped: provisioned or Serverless v2; the emulator:
  ``--cluster NAME:provisioned,state=stopped``).
- Connection ``aurora_pg`` (type ``postgres``), or the one named by the optional Variable
  ``aurora_wake_stopped_conn_id`` (a ``mysql`` one for Aurora MySQL): host and port of the
  cluster's writer endpoint, login, password (or extra ``{"iam": true}``) and schema.

Needs ``apache-airflow-providers-postgres`` or ``apache-airflow-providers-mysql`` for ``check``.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from airflow_aurora_wake.compat import DAG
from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

CLUSTER = "{{ var.value.aurora_wake_stopped_cluster }}"
CONN_ID = "{{ var.value.get('aurora_wake_stopped_conn_id', 'aurora_pg') }}"

with DAG(
    dag_id="example_aurora_stopped_cluster",
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
        start_if_stopped=True,
    )

    ready = AuroraServerlessReadySensor(
        task_id="ready",
        db_cluster_identifier=CLUSTER,
        aws_conn_id="aws_default",
        conn_id=CONN_ID,
        deferrable=True,
        timeout=30 * 60,
        describe_interval=30,
        stopped_grace=120,
    )

    check = SQLExecuteQueryOperator(task_id="check", conn_id=CONN_ID, sql="SELECT 1")

    wake >> ready >> check
