"""Parts 1 and 2: detection lag, false ready and AWS API cost, waiter by waiter, scenario by scenario.

Every wake is independent: each (scenario, waiter, run) gets its own emulated cluster, all in one
emulator process, and all of them wake at the same time. The harness performs the wake step that
a pipeline would perform before waiting (the same for every waiter), then starts every waiter at
once:

* ``v2`` and ``deep``: a TCP connection to the paused cluster's endpoint, closed at once (a
  "nudge"; the resume proceeds, as the emulator models it);
* ``v1``: ``ModifyCurrentDBClusterCapacity`` (what the article and the wake operator do);
* ``stopped``: ``StartDBCluster`` (what ``RdsStartDbOperator`` and the wake operator do).

The wake step's own RDS call is not counted against the waiters: counters are read after it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import waiters as w
from botocore.config import Config
from emulator_proc import EmulatorProcess
from stats import rounded, summary


@dataclass(frozen=True)
class Scenario:
    """One kind of wake.

    :param name: short name.
    :param title: what it models.
    :param spec: ``ClusterSpec`` fields (besides identifier and timings).
    :param timings: emulator timings at scale 1.
    :param wake: ``nudge``, ``modify-capacity`` or ``start``.
    :param waiters: which waiters run on it.
    """

    name: str
    title: str
    spec: Mapping[str, Any]
    timings: Mapping[str, float]
    wake: str
    waiters: tuple[str, ...] = ("aurora-wake", "amazon", "bare-connect")

    def scaled_timings(self, scale: float) -> dict[str, float]:
        """The timings multiplied by ``scale``."""
        return {key: value * scale for key, value in self.timings.items()}


SCENARIOS: dict[str, Scenario] = {
    "v2": Scenario(
        "v2",
        "Serverless v2, paused, 15 s resume",
        {"kind": "serverless-v2", "state": "paused"},
        {"resume_seconds": 15.0},
        "nudge",
    ),
    "deep": Scenario(
        "deep",
        "Serverless v2, deep sleep, 30 s resume",
        {"kind": "serverless-v2", "state": "paused"},
        # deep_sleep_after_seconds=0: every resume of these clusters is a deep-sleep resume.
        {"deep_sleep_after_seconds": 0.0, "deep_resume_seconds": 30.0},
        "nudge",
    ),
    "v1": Scenario(
        "v1",
        "Serverless v1, paused, 15 s to capacity + 10 s to connections",
        {"kind": "serverless-v1", "state": "paused"},
        {"v1_capacity_seconds": 15.0, "v1_connect_extra_seconds": 10.0},
        "modify-capacity",
        ("aurora-wake", "amazon", "article", "bare-connect"),
    ),
    "stopped": Scenario(
        "stopped",
        "Stopped cluster, StartDBCluster, start shortened to 20 s",
        {"kind": "serverless-v2", "state": "stopped"},
        {"start_seconds": 20.0},
        "start",
    ),
}


@dataclass
class Run:
    """One wait: one waiter on its own cluster."""

    scenario: str
    waiter: str
    cluster: w.ClusterRef
    wake_at: float = 0.0
    outcome: w.WaitOutcome | None = None
    record: dict[str, Any] = field(default_factory=dict)


def _nudge(cluster: w.ClusterRef) -> None:
    with socket.create_connection((cluster.host, cluster.port), timeout=5):
        pass


def _wake(scenario: Scenario, cluster: w.ClusterRef, rds: Any) -> float:
    at = time.time()
    if scenario.wake == "nudge":
        _nudge(cluster)
    elif scenario.wake == "modify-capacity":
        rds.modify_current_db_cluster_capacity(
            DBClusterIdentifier=cluster.identifier,
            Capacity=2,
            SecondsBeforeTimeout=300,
            TimeoutAction="RollbackCapacityChange",
        )
    elif scenario.wake == "start":
        rds.start_db_cluster(DBClusterIdentifier=cluster.identifier)
    else:  # pragma: no cover - programming error
        raise ValueError(scenario.wake)
    return at


def _waiter_function(
    name: str, executor: ThreadPoolExecutor, amazon_delay: int
) -> Callable[[w.ClusterRef], Any]:
    if name == "aurora-wake":
        return w.wait_aurora_wake
    if name == "amazon":
        return partial(w.wait_amazon, waiter_delay=amazon_delay)
    if name == "article":
        return partial(w.wait_article, executor=executor)
    if name == "bare-connect":
        return partial(w.wait_bare_connect, executor=executor)
    raise ValueError(name)


async def run_batch(
    emu: EmulatorProcess,
    *,
    scenarios: list[str],
    wakes: int,
    scale: float,
    label: str,
    throttle_fraction: float = 0.0,
    amazon_delay: int = w.AMAZON_WAITER_DELAY,
    time_limit: float = 300.0,
    only: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Run ``wakes`` independent wakes of each scenario for each of its waiters, all at once.

    :param emu: the emulator process.
    :param scenarios: scenario names.
    :param wakes: wakes per scenario per waiter.
    :param scale: factor applied to the emulator's timings.
    :param label: prefix of the cluster identifiers (unique per batch).
    :param throttle_fraction: fraction of RDS calls answered ``Throttling`` while waiting.
    :param amazon_delay: the Amazon trigger's ``waiter_delay``.
    :param time_limit: seconds after which a wait still running is recorded as ``timeout``.
    :param only: run only these waiters (default: each scenario's waiters).
    :return: one record per wait.
    """
    import boto3

    runs: list[Run] = []
    for name in scenarios:
        scenario = SCENARIOS[name]
        timings = scenario.scaled_timings(scale)
        for waiter in scenario.waiters:
            if only is not None and waiter not in only:
                continue
            for index in range(wakes):
                identifier = f"{label}-{name}-{waiter}-{index}"
                endpoint = emu.add_cluster(
                    identifier, engine="aurora-postgresql", timings=timings, **scenario.spec
                )
                runs.append(
                    Run(
                        name,
                        waiter,
                        w.ClusterRef(
                            identifier, endpoint["host"], int(endpoint["port"]), emu.endpoint_url, emu.region
                        ),
                    )
                )
    executor = ThreadPoolExecutor(max_workers=max(32, len(runs) + 8), thread_name_prefix="bench-blocking")
    rds = boto3.session.Session().client(
        "rds",
        region_name=emu.region,
        endpoint_url=emu.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=64),
    )
    loop = asyncio.get_running_loop()
    try:
        # The wake step, for every cluster at (nearly) the same instant.
        wake_times = await asyncio.gather(
            *(
                loop.run_in_executor(executor, _wake, SCENARIOS[run.scenario], run.cluster, rds)
                for run in runs
            )
        )
        for run, at in zip(runs, wake_times, strict=True):
            run.wake_at = at
        before = emu.counters()
        if throttle_fraction:
            emu.set_faults(throttle_fraction=throttle_fraction, seed=7)

        async def one(run: Run) -> None:
            function = _waiter_function(run.waiter, executor, amazon_delay)
            started = time.time()
            try:
                run.outcome = await asyncio.wait_for(function(run.cluster), time_limit)
            except TimeoutError:
                run.outcome = w.WaitOutcome(None, "timeout", f"still waiting after {time_limit:g} s", started)
            except Exception as exc:
                run.outcome = w.WaitOutcome(None, "error", f"{type(exc).__name__}: {exc}", started)

        await asyncio.gather(*(one(run) for run in runs))
        if throttle_fraction:
            emu.set_faults(throttle_fraction=0.0)
        # Let resumes started by waiters that declared ready early finish, so ready_at is known.
        latest = max(
            run.wake_at + sum(SCENARIOS[run.scenario].scaled_timings(scale).values()) for run in runs
        )
        await asyncio.sleep(max(0.0, latest + 0.5 - time.time()))
        state = emu.state()
        after = state["counters"]
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return [_record(run, state, before, after, throttle_fraction) for run in runs]


def _calls(counters: Mapping[str, Any], identifier: str) -> dict[str, int]:
    return dict(counters["rds_calls_by_cluster"].get(identifier, {}))


def _record(
    run: Run,
    state: Mapping[str, Any],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    throttle_fraction: float,
) -> dict[str, Any]:
    identifier = run.cluster.identifier
    cluster = state["clusters"][identifier]
    outcome = run.outcome
    assert outcome is not None
    ready_at_cluster: float | None = cluster.get("ready_at")
    calls_before = _calls(before, identifier)
    calls = {
        action: count - calls_before.get(action, 0)
        for action, count in _calls(after, identifier).items()
        if count - calls_before.get(action, 0)
    }
    attempts = after["connection_attempts"].get(identifier, 0) - before["connection_attempts"].get(
        identifier, 0
    )
    lag = None
    false_ready = False
    if outcome.ready_at is not None:
        if ready_at_cluster is None:
            false_ready = True
        else:
            lag = outcome.ready_at - ready_at_cluster
            false_ready = lag < 0
    return {
        "scenario": run.scenario,
        "waiter": run.waiter,
        "cluster": identifier,
        "throttle_fraction": throttle_fraction,
        "wake_at": run.wake_at,
        "waiter_started_at": outcome.started_at,
        "waiter_ready_at": outcome.ready_at,
        "cluster_ready_at": ready_at_cluster,
        "lag_seconds": rounded(lag, 4),
        "false_ready": false_ready,
        "status": outcome.status,
        "detail": outcome.detail[:300],
        "seconds_waited": rounded(outcome.ready_at - outcome.started_at, 3) if outcome.ready_at else None,
        "rds_calls": calls,
        "connection_attempts": attempts,
    }


def aggregate(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (scenario, waiter): lag distribution, false ready, failures and RDS calls per wait."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["scenario"], record["waiter"]), []).append(record)
    rows = []
    for (scenario, waiter), items in groups.items():
        lags = [r["lag_seconds"] for r in items if r["lag_seconds"] is not None]
        true_lags = [r["lag_seconds"] for r in items if r["lag_seconds"] is not None and not r["false_ready"]]
        completed = [r for r in items if r["status"] == "success"]
        actions: dict[str, int] = {}
        for r in completed:
            for action, count in r["rds_calls"].items():
                actions[action] = actions.get(action, 0) + count
        describes = [r["rds_calls"].get("DescribeDBClusters", 0) for r in completed]
        waited = [r["seconds_waited"] for r in completed if r["seconds_waited"]]
        # "At most one DescribeDBClusters per 10 s of waiting": one to start, then the rate.
        rates = [
            max(0, r["rds_calls"].get("DescribeDBClusters", 0) - 1) / (r["seconds_waited"] / 10.0)
            for r in completed
            if r["seconds_waited"]
        ]
        rows.append(
            {
                "scenario": scenario,
                "waiter": waiter,
                "waits": len(items),
                "completed": len(completed),
                "failed": len(items) - len(completed),
                "failures": sorted(
                    {f"{r['status']}: {r['detail'][:120]}" for r in items if r["status"] != "success"}
                ),
                "false_ready": sum(1 for r in items if r["false_ready"]),
                "lag": {k: rounded(v, 3) for k, v in summary(lags).items()},
                "lag_true_ready": {k: rounded(v, 3) for k, v in summary(true_lags).items()},
                "abs_lag_p95": rounded(summary([abs(x) for x in lags])["p95"], 3),
                "seconds_waited": {k: rounded(v, 3) for k, v in summary(waited).items()},
                "rds_calls_per_wait": {a: round(c / len(completed), 2) for a, c in sorted(actions.items())}
                if completed
                else {},
                "describes_per_wait": rounded(sum(describes) / len(describes), 2) if describes else None,
                "extra_describes_per_10s_p95": rounded(summary(rates)["p95"], 3),
                "extra_describes_per_10s_max": rounded(max(rates), 3) if rates else None,
                "connection_attempts_per_wait": rounded(
                    sum(r["connection_attempts"] for r in items) / len(items), 2
                ),
            }
        )
    order = {name: i for i, name in enumerate(SCENARIOS)}
    waiter_order = {"aurora-wake": 0, "amazon": 1, "article": 2, "bare-connect": 3}
    rows.sort(key=lambda row: (order.get(row["scenario"], 99), waiter_order.get(row["waiter"], 99)))
    return rows
