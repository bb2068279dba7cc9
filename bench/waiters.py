"""The waiters compared side by side, each wrapped as ``async (cluster) -> WaitOutcome``.

* ``aurora-wake``: this project's ``AuroraServerlessReadyTrigger.run()`` with its defaults.
* ``amazon``: the Amazon provider's ``RdsDbAvailableTrigger`` with the defaults
  ``RdsStartDbOperator`` gives it (``waiter_delay=30``, ``waiter_max_attempts=40``,
  ``db_type="cluster"``).
* ``article``: the original article's loop, re-implemented from its description: poll
  ``Capacity`` with ``DescribeDBClusters`` and sleep ``i**2`` seconds between polls (v1 only),
  blocking boto3 in a worker thread as the article ran it.
* ``bare-connect``: one blocking ``psycopg.connect(connect_timeout=120)`` and ``SELECT 1`` in a
  worker thread: the floor for lag, at the price of a worker slot per wait.

Every waiter reports the wall-clock time (``time.time()``, the emulator's clock too) at which it
declared the cluster ready.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import airflow_env
import boto3
import psycopg
from airflow.providers.amazon.aws.triggers.rds import RdsDbAvailableTrigger

from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

#: Defaults of ``RdsStartDbOperator`` (apache-airflow-providers-amazon 9.39), which defers on
#: ``RdsDbAvailableTrigger``.
AMAZON_WAITER_DELAY = 30
AMAZON_WAITER_MAX_ATTEMPTS = 40
#: The article's loop: how many polls before giving up.
ARTICLE_MAX_POLLS = 12
BARE_CONNECT_TIMEOUT = 120


@dataclass(frozen=True)
class ClusterRef:
    """An emulated cluster as the harness knows it.

    :param identifier: the DB cluster identifier.
    :param host: its database endpoint host.
    :param port: its database endpoint port.
    :param endpoint_url: the emulator's AWS endpoint.
    :param region: the region.
    """

    identifier: str
    host: str
    port: int
    endpoint_url: str
    region: str


@dataclass
class WaitOutcome:
    """What one waiter did for one cluster.

    :param ready_at: when it declared the cluster ready (epoch seconds), ``None`` if it did not.
    :param status: ``success``, or what ended the wait otherwise (``error``, ``timeout``...).
    :param detail: the error text, if any.
    :param started_at: when the waiter started (epoch seconds).
    """

    ready_at: float | None
    status: str
    detail: str = ""
    started_at: float = 0.0


Waiter = Callable[[ClusterRef], Awaitable[WaitOutcome]]


async def wait_aurora_wake(cluster: ClusterRef, *, timeout: float = 900.0) -> WaitOutcome:
    """This project's trigger, with its defaults (connect timeout 30 s, describe every 10 s).

    :param cluster: the cluster.
    :param timeout: the trigger's deadline, seconds from now.
    """
    started = time.time()
    trigger = AuroraServerlessReadyTrigger(
        db_cluster_identifier=cluster.identifier,
        deadline=started + timeout,
        aws_conn_id=airflow_env.AWS_CONN_ID,
        conn_id=airflow_env.PG_CONN_ID,
    )
    event = await anext(trigger.run())
    payload: dict[str, Any] = event.payload
    if payload.get("status") == "success":
        return WaitOutcome(time.time(), "success", started_at=started)
    return WaitOutcome(None, str(payload.get("status")), str(payload.get("message", "")), started)


def amazon_trigger(cluster: ClusterRef, *, waiter_delay: int = AMAZON_WAITER_DELAY) -> Any:
    """The Amazon provider's trigger as ``RdsStartDbOperator(db_type="cluster")`` defers on it.

    :param cluster: the cluster.
    :param waiter_delay: seconds between polls (the operator's default: 30).
    """
    return RdsDbAvailableTrigger(
        db_identifier=cluster.identifier,
        waiter_delay=waiter_delay,
        waiter_max_attempts=AMAZON_WAITER_MAX_ATTEMPTS,
        aws_conn_id=airflow_env.AWS_CONN_ID,
        response={},
        db_type="cluster",
        region_name=cluster.region,
    )


async def wait_amazon(cluster: ClusterRef, *, waiter_delay: int = AMAZON_WAITER_DELAY) -> WaitOutcome:
    """The Amazon provider's ``RdsDbAvailableTrigger`` (status ``available`` only).

    :param cluster: the cluster.
    :param waiter_delay: seconds between polls.
    """
    started = time.time()
    event = await anext(amazon_trigger(cluster, waiter_delay=waiter_delay).run())
    payload: dict[str, Any] = event.payload
    if payload.get("status") == "success":
        return WaitOutcome(time.time(), "success", started_at=started)
    return WaitOutcome(None, str(payload.get("status")), str(payload.get("message", "")), started)


def article_loop(rds: Any, identifier: str, *, max_polls: int = ARTICLE_MAX_POLLS) -> bool:
    """The original article's wait: poll ``Capacity``, sleeping ``i**2`` seconds between polls.

    :param rds: a boto3 RDS client.
    :param identifier: the cluster.
    :param max_polls: polls before giving up.
    :return: whether ``Capacity`` became positive.
    """
    for i in range(max_polls):
        cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
        if cluster.get("Capacity", 0) > 0:
            return True
        time.sleep(i**2)
    return False


async def wait_article(cluster: ClusterRef, *, executor: ThreadPoolExecutor) -> WaitOutcome:
    """The article's loop in a worker thread (it is blocking boto3 code).

    :param cluster: the cluster.
    :param executor: the worker threads.
    """

    def run() -> WaitOutcome:
        started = time.time()
        rds = boto3.session.Session().client(
            "rds",
            region_name=cluster.region,
            endpoint_url=cluster.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        try:
            if article_loop(rds, cluster.identifier):
                return WaitOutcome(time.time(), "success", started_at=started)
            return WaitOutcome(None, "gave-up", f"Capacity still 0 after {ARTICLE_MAX_POLLS} polls", started)
        except Exception as exc:  # reported, not raised: one failed wait must not end the run
            return WaitOutcome(None, "error", f"{type(exc).__name__}: {exc}", started)

    return await asyncio.get_running_loop().run_in_executor(executor, run)


async def wait_bare_connect(cluster: ClusterRef, *, executor: ThreadPoolExecutor) -> WaitOutcome:
    """One blocking ``psycopg.connect(connect_timeout=120)`` plus ``SELECT 1`` in a worker thread.

    :param cluster: the cluster.
    :param executor: the worker threads (one is held for the whole wait).
    """

    def run() -> WaitOutcome:
        started = time.time()
        try:
            with psycopg.connect(
                host=cluster.host,
                port=cluster.port,
                user="postgres",
                dbname="test",
                connect_timeout=BARE_CONNECT_TIMEOUT,
            ) as connection:
                connection.execute("SELECT 1").fetchone()
            return WaitOutcome(time.time(), "success", started_at=started)
        except Exception as exc:
            return WaitOutcome(None, "error", f"{type(exc).__name__}: {str(exc).strip()[:200]}", started)

    return await asyncio.get_running_loop().run_in_executor(executor, run)


async def warm_up(cluster: ClusterRef) -> None:
    """Run each trigger once on an available cluster, so imports and botocore's model loading
    (a triggerer that has been running a while has done them) do not land inside a measured wait.

    :param cluster: an available cluster.
    """
    for function in (wait_aurora_wake, wait_amazon):
        outcome = await asyncio.wait_for(function(cluster), 60)
        if outcome.status != "success":
            raise RuntimeError(f"warm-up of {function.__name__} failed: {outcome.detail}")
