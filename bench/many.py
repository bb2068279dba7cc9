"""Part 3 worker: N deferred waits in one process, run the way the triggerer runs triggers.

Run by ``bench/run.py`` in a fresh process per configuration (so RSS and CPU belong to that
configuration alone), against an emulator in another process. Airflow's real ``TriggerRunner``
needs the triggerer's supervisor and the Task SDK's API comms, so it is not used; this worker
does what its loop does: one asyncio event loop, triggers created one by one with an
``await asyncio.sleep(0)`` between them, each task iterating ``trigger.run()`` until its first
event. A ticker task measures the event loop's scheduling delay all along.

Usage (normally from run.py)::

    python bench/many.py '{"endpoint_url": ..., "region": ..., "waiter": "aurora-wake",
                           "n": 1000, "clusters": ["c0", ...], "output": "/tmp/x.json"}'
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import airflow_env

TICK_SECONDS = 0.02
#: A thread of its own for the emulator's admin calls: never the loop, never the default pool.
_ADMIN_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-admin")


@dataclass
class Ticker:
    """Measures how late the event loop runs a task that asked to sleep ``TICK_SECONDS``."""

    samples: list[tuple[float, float]] = field(default_factory=list)  # (epoch, delay seconds)

    async def run(self) -> None:
        """Tick until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK_SECONDS)
            delay = loop.time() - before - TICK_SECONDS
            self.samples.append((time.time(), max(0.0, delay)))

    def between(self, start: float, end: float) -> list[float]:
        """Delays (ms) observed between two epoch times."""
        return [delay * 1000 for at, delay in self.samples if start <= at < end]


def _admin(endpoint_url: str, path: str) -> Any:
    with urllib.request.urlopen(f"{endpoint_url}/_emulator{path}", timeout=120) as response:
        return json.loads(response.read())


async def _admin_async(endpoint_url: str, path: str) -> Any:
    # Blocking HTTP in a thread of its own: never on the measured event loop.
    return await asyncio.get_running_loop().run_in_executor(_ADMIN_EXECUTOR, _admin, endpoint_url, path)


def _totals(counters: dict[str, Any], clusters: list[str]) -> dict[str, float]:
    rds = sum(sum(counters["rds_calls_by_cluster"].get(c, {}).values()) for c in clusters)
    by_cluster = counters["rds_calls_by_cluster"]
    describes = sum(by_cluster.get(c, {}).get("DescribeDBClusters", 0) for c in clusters)
    attempts = sum(counters["connection_attempts"].get(c, 0) for c in clusters)
    return {"rds_calls": rds, "describes": describes, "connection_attempts": attempts}


async def main(config: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration; return its figures."""
    import psutil
    import waiters as w

    process = psutil.Process()
    endpoint_url: str = config["endpoint_url"]
    region: str = config["region"]
    waiter: str = config["waiter"]
    n: int = int(config["n"])
    clusters: list[str] = list(config["clusters"])
    amazon_delay = int(config.get("amazon_delay", w.AMAZON_WAITER_DELAY))
    placeholder = config["placeholder"]
    resume_seconds = float(config.get("resume_seconds", 0.0))
    loop = asyncio.get_running_loop()

    ticker = Ticker()
    ticker_task = loop.create_task(ticker.run())
    # Warm up (imports, botocore models, the first client): a triggerer's fixed cost, not per wait.
    await w.warm_up(
        w.ClusterRef(
            placeholder["identifier"], placeholder["host"], placeholder["port"], endpoint_url, region
        )
    )
    gc.collect()
    await asyncio.sleep(1.0)
    rss_baseline = process.memory_info().rss
    cpu_base_a = process.cpu_times()
    base_a = time.time()
    await asyncio.sleep(2.0)
    cpu_base_b = process.cpu_times()
    idle_cpu = (cpu_base_b.user + cpu_base_b.system - cpu_base_a.user - cpu_base_a.system) / (
        time.time() - base_a
    )

    before_start = _totals(await _admin_async(endpoint_url, "/counters"), clusters)

    released: dict[int, float] = {}
    outcomes: dict[int, str] = {}

    def make_trigger(index: int) -> Any:
        ref = w.ClusterRef(clusters[index % len(clusters)], "", 0, endpoint_url, region)
        if waiter == "amazon":
            return w.amazon_trigger(ref, waiter_delay=amazon_delay)
        trigger = w.AuroraServerlessReadyTrigger(
            db_cluster_identifier=ref.identifier,
            deadline=time.time() + 1800,
            aws_conn_id=airflow_env.AWS_CONN_ID,
            conn_id=airflow_env.PG_CONN_ID,
        )
        if waiter == "aurora-wake-unshared":
            # One poller per wait: what the registry saves, measured.
            trigger.__class__ = _UnsharedTrigger
        return trigger

    async def run_trigger(index: int, trigger: Any) -> None:
        async for event in trigger.run():
            released[index] = time.time()
            outcomes[index] = str(event.payload.get("status"))
            break

    started_at = time.time()
    tasks = []
    for index in range(n):
        tasks.append(loop.create_task(run_trigger(index, make_trigger(index))))
        await asyncio.sleep(0)
    all_created_at = time.time()

    # Settle: every wait has made its first check (Amazon: one describe each; ours: one per poller).
    settle_deadline = time.time() + float(config.get("settle_timeout", 120))
    expected_first = n if waiter in ("amazon", "aurora-wake-unshared") else len(clusters)
    while time.time() < settle_deadline:
        totals = _totals(await _admin_async(endpoint_url, "/counters"), clusters)
        described = totals["describes"] - before_start["describes"] >= expected_first
        # This project's pollers: each has also made its first probe (which starts the resume).
        probed = waiter == "amazon" or (
            totals["connection_attempts"] - before_start["connection_attempts"] >= len(clusters)
        )
        if described and probed:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)
    settled_at = time.time()
    if waiter == "amazon":
        # The Amazon trigger waits only while RDS does not show the cluster available: its
        # clusters are stopped, and started now (each starts in the configured start time).
        import boto3

        rds = boto3.session.Session().client(
            "rds",
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for identifier in clusters:
            await asyncio.to_thread(rds.start_db_cluster, DBClusterIdentifier=identifier)

    state = await _admin_async(endpoint_url, "/state")
    expected_ready = []
    for identifier in clusters:
        cluster = state["clusters"][identifier]
        expected_ready.append(
            cluster.get("next_transition_at") or cluster.get("ready_at") or settled_at + resume_seconds
        )
    window_end = min(expected_ready) - 0.5
    counters_a = _totals(state["counters"], clusters)
    cpu_a = process.cpu_times()
    window_start = time.time()
    rss_samples = [process.memory_info().rss]
    while time.time() < window_end:
        await asyncio.sleep(min(1.0, max(0.0, window_end - time.time())))
        rss_samples.append(process.memory_info().rss)
    cpu_b = process.cpu_times()
    window_stop = time.time()
    counters_b = _totals(await _admin_async(endpoint_url, "/counters"), clusters)
    window = max(1e-6, window_stop - window_start)
    released_before_window_end = len(released)

    timeout = float(config.get("release_timeout", 120))
    _, pending = await asyncio.wait(tasks, timeout=max(1.0, max(expected_ready) + timeout - time.time()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    finished_at = time.time()
    await asyncio.sleep(0.2)
    ticker_task.cancel()
    final = await _admin_async(endpoint_url, "/state")

    lags = []
    false_ready = 0
    for index, at in released.items():
        ready_at = final["clusters"][clusters[index % len(clusters)]].get("ready_at")
        if ready_at is None or at < ready_at:
            false_ready += 1
        if ready_at is not None:
            lags.append(at - ready_at)
    from stats import summary

    def loop_lag(start: float, end: float) -> dict[str, Any]:
        figures = summary(ticker.between(start, end))
        return {k: (None if v is None else round(v, 2)) for k, v in figures.items()}

    rss_window = max(rss_samples)
    harness_calls = len(clusters) if waiter == "amazon" else 0  # the StartDBCluster calls
    calls = counters_b["rds_calls"] - counters_a["rds_calls"]
    return {
        "waiter": waiter,
        "n": n,
        "clusters": len(clusters),
        "pid": os.getpid(),
        "startup_seconds": round(all_created_at - started_at, 3),
        "settle_seconds": round(settled_at - started_at, 3),
        "window_seconds": round(window, 3),
        "rss_baseline_bytes": rss_baseline,
        "rss_waiting_bytes": rss_window,
        "rss_per_wait_bytes": round((rss_window - rss_baseline) / n, 1),
        "idle_cpu_percent_before": round(idle_cpu * 100, 2),
        "cpu_percent_waiting": round(
            (cpu_b.user + cpu_b.system - cpu_a.user - cpu_a.system) / window * 100, 2
        ),
        "rds_calls_per_minute": round(calls / window * 60, 2),
        "describes_per_minute": round((counters_b["describes"] - counters_a["describes"]) / window * 60, 2),
        "connection_attempts_per_minute": round(
            (counters_b["connection_attempts"] - counters_a["connection_attempts"]) / window * 60, 2
        ),
        # The waiters' own calls until the window's end (not the harness's StartDBCluster calls).
        "rds_calls_per_minute_whole_wait": round(
            (counters_b["rds_calls"] - before_start["rds_calls"] - harness_calls)
            / max(1e-6, window_stop - started_at)
            * 60,
            2,
        ),
        "connection_attempts_per_minute_whole_wait": round(
            (counters_b["connection_attempts"] - before_start["connection_attempts"])
            / max(1e-6, window_stop - started_at)
            * 60,
            2,
        ),
        "rds_calls_total": counters_b["rds_calls"]
        - before_start["rds_calls"]
        - (len(clusters) if waiter == "amazon" else 0),
        "released": len(released),
        "released_before_ready": released_before_window_end,
        "not_released": n - len(released),
        "outcomes": {status: list(outcomes.values()).count(status) for status in set(outcomes.values())},
        "false_ready": false_ready,
        "release_lag_seconds": {k: (None if v is None else round(v, 3)) for k, v in summary(lags).items()},
        "loop_lag_ms": {
            "all": loop_lag(started_at, finished_at + 0.2),
            "startup": loop_lag(started_at, settled_at),
            "waiting": loop_lag(window_start, window_stop),
            "release": loop_lag(window_stop, finished_at + 0.2),
        },
        "tick_seconds": TICK_SECONDS,
    }


def _unshared_class() -> type:
    from airflow_aurora_wake.triggers.aurora_serverless import AuroraServerlessReadyTrigger

    class UnsharedTrigger(AuroraServerlessReadyTrigger):
        """The project's trigger with sharing off: one describe-and-probe loop per wait."""

        @property
        def share_key(self) -> None:  # type: ignore[override]
            return None

    return UnsharedTrigger


_UnsharedTrigger: type = type("placeholder", (), {})


if __name__ == "__main__":
    settings = json.loads(sys.argv[1])
    airflow_env.configure_connections(settings["endpoint_url"], settings["region"])
    _UnsharedTrigger = _unshared_class()
    # Trigger logs go to a file, as a triggerer's do; INFO, as deployed.
    handler = logging.FileHandler(settings.get("log_file", os.devnull))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    result = asyncio.run(main(settings))
    with open(settings["output"], "w") as stream:
        json.dump(result, stream)
