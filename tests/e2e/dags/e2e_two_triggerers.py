"""Twenty deferred waits on two paused clusters, for the two-triggerer end-to-end test.

One wake task per cluster, then ten readiness sensors on each, deferred while the clusters
resume. The sensors alternate between the clusters in falling ``priority_weight`` (absolute),
the order in which a triggerer picks unassigned triggers: a triggerer that can take only the
first twelve gets six waits on each cluster. Every task connects through ``aurora_fleet``, a
PostgreSQL connection with no host, so each reaches its own cluster's writer endpoint.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_aurora_wake.operators.aurora_serverless import AuroraServerlessWakeOperator
from airflow_aurora_wake.sensors.aurora_serverless import AuroraServerlessReadySensor

DAG_ID = "e2e_two_triggerers"
#: The paused Serverless v2 clusters the waits share (contract with the test's emulator).
CLUSTERS = ("e2e-fleet-a", "e2e-fleet-b")
#: How many readiness sensors, over all clusters.
WAITS = 20
#: The database connection of every task: no host, so the cluster's writer endpoint is used.
CONN_ID = "aurora_fleet"
#: The sensors' ``describe_interval`` (the default): the test bounds RDS calls with it.
DESCRIBE_INTERVAL = 10.0
#: The sensors' timeout: far beyond the test's own run, so no wait ends by it.
TIMEOUT = 900


def sensor_id(index: int) -> str:
    """The task id of the ``index``-th sensor (0-based): its rank in priority.

    :param index: 0 to ``WAITS - 1``.
    """
    return f"ready_{index:02d}"


def cluster_of(index: int) -> str:
    """The cluster the ``index``-th sensor waits on: the clusters in turn.

    :param index: 0 to ``WAITS - 1``.
    """
    return CLUSTERS[index % len(CLUSTERS)]


def wake_id(cluster: str) -> str:
    """The task id of a cluster's wake task.

    :param cluster: one of ``CLUSTERS``.
    """
    return f"wake_{CLUSTERS.index(cluster)}"


with DAG(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e"],
) as dag:
    wakes = {
        cluster: AuroraServerlessWakeOperator(
            task_id=wake_id(cluster),
            db_cluster_identifier=cluster,
            conn_id=CONN_ID,
            priority_weight=WAITS + 1,
            weight_rule="absolute",
        )
        for cluster in CLUSTERS
    }
    for index in range(WAITS):
        wakes[cluster_of(index)] >> AuroraServerlessReadySensor(
            task_id=sensor_id(index),
            db_cluster_identifier=cluster_of(index),
            conn_id=CONN_ID,
            deferrable=True,
            timeout=TIMEOUT,
            describe_interval=DESCRIBE_INTERVAL,
            priority_weight=WAITS - index,
            weight_rule="absolute",
        )
