"""
Hold an Aurora cluster warm, at a capacity floor, around an ETL; then give it back its own scaling.

One ``AuroraServerlessWarmWindow`` task group around the ETL of
``example_aurora_serverless_wake``:
``warm.hold >> warm.ready >> warm.hold_floor >> create_table >> load_rows >> read_back >> warm.release``
(the ETL tasks' ids carry the group's prefix too, ``warm.create_table``...):

- ``hold`` (a setup task) holds the cluster at 4 ACUs at least (``MaxCapacity`` raised to 8 if
  lower) for two hours at most: for Serverless v2 that alone resumes a paused cluster, through
  the RDS API; Serverless v1 gets a capacity request; a stopped cluster is started;
  provisioned clusters have nothing to hold, and the window still runs;
- ``ready`` waits, deferred, until a real ``SELECT 1`` succeeds; ``hold_floor`` holds again
  (the floor of a cluster that was stopped applies once it is up; the two hours restart);
- ``create_table``, ``load_rows`` and ``read_back`` are the ETL, on a cluster that neither pauses
  nor starts at its lowest capacity while it runs: they replace this DAG run's 3 rows of the table
  ``aurora_wake_example_sales`` and read them back (``read_back`` fails unless it gets them);
- ``release`` (the teardown) runs even when the ETL fails: the cluster gets its own scaling
  back (or the highest floor another live window holds) and may pause again. Its XCom says
  what the window cost: ``held_seconds``, ``min_capacity`` and ``acu_hours``.

The hold is a tag on the cluster that expires by itself; ``example_aurora_sweep_holds`` cleans
up after runs that died before their release.

Configured by Airflow connections and Variables only (the same file runs against real AWS and
against this project's emulator), those of ``example_aurora_serverless_wake``:

- Connection ``aws_default`` (type ``aws``): credentials allowed to call
  ``rds:DescribeDBClusters``, ``rds:ModifyDBCluster``, ``rds:AddTagsToResource`` and
  ``rds:RemoveTagsFromResource`` (and ``rds:StartDBCluster`` / ``rds:StopDBCluster`` for
  stopped clusters, ``rds:ModifyCurrentDBClusterCapacity`` for v1), with ``region_name`` in its
  extra. For the emulator: login ``testing``, password ``testing``, extra
  ``{"endpoint_url": "http://127.0.0.1:PORT", "region_name": "us-east-1"}``.
- Variable ``aurora_wake_example_cluster``: the DB cluster identifier (or ARN).
- Connection ``aurora_pg`` (type ``postgres``), or the connection named by the optional Variable
  ``aurora_wake_example_conn_id`` (a ``mysql`` one for Aurora MySQL): the database, with its
  host and port set to the cluster's writer endpoint, a login allowed to create a table and
  write to it, and the database as schema.

Needs ``apache-airflow-providers-postgres`` (PostgreSQL) or ``apache-airflow-providers-mysql``
(MySQL) for the SQL steps.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG
from airflow.providers.common.sql.hooks.handlers import fetch_all_handler
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

from airflow_aurora_wake.task_groups.warm_window import AuroraServerlessWarmWindow

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


with (
    DAG(
        dag_id="example_aurora_warm_window",
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        tags=["example", "aurora"],
        doc_md=__doc__,
    ) as dag,
    # The tasks created inside the window run after its hold and readiness, before its release.
    AuroraServerlessWarmWindow(
        "warm",
        db_cluster_identifier=CLUSTER,
        conn_id=CONN_ID,
        min_capacity=4,
        max_capacity=8,
        hold_for=timedelta(hours=2),
        aws_conn_id="aws_default",
        stop_if_started=False,
    ),
):
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

    create_table >> load_rows >> read_back
