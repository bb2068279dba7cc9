"""Zero-wait starts: pipelines on paused clusters, with and without pre-wake, in a real Airflow 3.

One deployment (scheduler with LocalExecutor, dag processor, API server, triggerer, as the
end-to-end tests start them: ``tests/e2e/e2e_airflow.py``) runs ``ready >> select_1`` every
``--period`` seconds on each of five paused Serverless v2 clusters of the emulator
(``SCENARIOS`` in ``prewake_dags/bench_prewake.py``: A pre-wake, B none, C late and missed, D
learned lead, all four on Airflow 3's default trigger timetable; E pre-wake on a data-interval
timetable). Per run it records, from Airflow's metadata database and the emulator's timeline,
the scheduled start, when the ready sensor and the SQL task started, whether the sensor
deferred, the companion's XCom, and the cluster's resume and pause. ``prewake_report.py`` writes
the section ``## Zero-wait starts`` of ``docs/benchmarks.md`` (kept by ``bench/run.py``) from
them; the raw figures go to ``docs/prewake.json``. About 10 minutes; needs the local PostgreSQL
server (127.0.0.1:5432)::

    .venv/bin/python bench/prewake.py
    .venv/bin/python bench/prewake.py --from-json   # only render the section again
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# The end-to-end tests' deployment and records are this benchmark's too: one definition of each.
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR / "prewake_dags"), str(REPO_ROOT / "tests" / "e2e")]

from bench_prewake import HELD_POOL, HELD_RUN, PLAN_VARIABLE, make_plan  # noqa: E402
from e2e_records import epoch  # noqa: E402
from prewake_report import render_section, replace_section  # noqa: E402

DAG_FILE = BENCH_DIR / "prewake_dags" / "bench_prewake.py"
#: C's held pre-wake: its pool gets no slot from HOLD_BEFORE s before that run's start until
#: RELEASE_AFTER s after it.
HOLD_BEFORE, RELEASE_AFTER = 60.0, 10.0
#: Executor slots: a pipeline's task and a pre-wake's can run at once, with room to spare.
PARALLELISM = 4
#: What this benchmark sets on top of the end-to-end deployment's settings.
AIRFLOW_SETTINGS = {
    # The scheduler loop sleeps this long when it found nothing to do (default 1 s).
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    # Parse the DAG file once: a re-parse every 30 s (the default) competes for the two cores,
    # and one that lands between a trigger-timetable run's start and its creation moves that
    # run to the parse's time (catchup=False), away from its pre-wake.
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
}


def pool_actions(plan: dict[str, Any]) -> list[tuple[float, int]]:
    """When to set :data:`HELD_POOL`'s slots, as ``(epoch, slots)``, to hold back one pre-wake."""
    actions: list[tuple[float, int]] = []
    for s in plan["scenarios"]:
        if (s["prewake"] or {}).get("pool") == HELD_POOL and plan["runs"] >= HELD_RUN:
            start = s["first_run"] + (HELD_RUN - 1) * plan["period_seconds"]
            actions += [(start - HOLD_BEFORE, 0), (start + RELEASE_AFTER, 1)]
    return sorted(actions)


# ------------------------------------------------------------------- the measurement
def _epoch(value: str | None) -> float | None:
    return None if value is None else epoch(value)


def _task(airflow: Any, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    """A task's state, times, XCom and skip reason; ``deferred`` when a triggerer logged for it."""
    row = airflow.task_instances(dag_id, run_id).get(task_id)
    if row is None:
        return {}
    logs = airflow.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    log = airflow.task_log(dag_id, run_id, task_id, max(1, row["try_number"] or 1)) or ""
    skips = [json.loads(line) for line in log.splitlines() if '"Skipping task."' in line]
    times = {"scheduled": "scheduled_dttm", "queued": "queued_dttm", "start": "start_date", "end": "end_date"}
    return {
        "state": row["state"],
        **{key: _epoch(row[column]) for key, column in times.items()},
        "deferred": any(logs.glob("attempt=*.log.trigger.*")),
        "xcom": airflow.xcom(dag_id, run_id, task_id),
        "note": skips[0].get("reason") if skips else None,
    }


def collect(airflow: Any, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pipeline run with its tasks, and its pre-wake (the companion run ``max_lead_time``
    before it), from Airflow's metadata database and task logs."""

    def runs(dag_id: str | None, shift: float = 0.0) -> dict[int, dict[str, Any]]:
        rows = airflow.query("SELECT * FROM dag_run WHERE dag_id = ? ORDER BY run_after", dag_id or "")
        return {
            round((_epoch(r["run_after"]) or 0) + shift): {
                "run_id": r["run_id"], "state": r["state"], "run_after": _epoch(r["run_after"]),
                "logical_date": _epoch(r["logical_date"]), "created_at": _epoch(r["created_at"]),
            }
            for r in rows
        }  # fmt: skip

    records = []
    for s in plan["scenarios"]:
        companions = runs(s["companion_dag_id"], (s["prewake"] or {}).get("max_lead_time", 0.0))
        for number, (start, run) in enumerate(runs(s["dag_id"]).items(), 1):
            prewake = companions.get(start)
            if prewake is not None:
                prewake["task"] = _task(airflow, s["companion_dag_id"], prewake["run_id"], "prewake")
            elif s["prewake"] is not None:
                prewake = {"state": None, "task": {}}
            ready, sql = (_task(airflow, s["dag_id"], run["run_id"], name) for name in ("ready", "select_1"))
            records.append({"scenario": s["key"], "run": number, **run, "ready": ready, "sql": sql,
                            "prewake": prewake})  # fmt: skip
    return records


def _count(airflow: Any, dag_ids: list[str], finished: bool) -> int:
    marks = ", ".join("?" * len(dag_ids))
    sql = f"SELECT count(*) AS n FROM dag_run WHERE dag_id IN ({marks}) AND "
    sql += ("" if finished else "NOT ") + "state IN ('success', 'failed')"
    return int(airflow.query(sql, *dag_ids)[0]["n"])


def _drive(airflow: Any, emulator: Any, plan: dict[str, Any], auto_pause: float) -> None:
    """Start Airflow, then wait for the DAGs, every run and every cluster's pause, setting the
    held pool's slots on time."""
    for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
        airflow.start(name, name, **{PLAN_VARIABLE: json.dumps(plan)})
    airflow.wait_for("the API server", airflow.api_ready, 240)
    airflow.api("POST", "/api/v2/pools", {"name": HELD_POOL, "slots": 1})
    body = {"pool": HELD_POOL, "include_deferred": False}
    set_slots = lambda n: airflow.api("PATCH", f"/api/v2/pools/{HELD_POOL}", {**body, "slots": n})  # noqa: E731
    set_slots(1)  # fails now, not in the middle of the run, if the API refuses it
    pipelines = [s["dag_id"] for s in plan["scenarios"]]
    dag_ids = pipelines + [s["companion_dag_id"] for s in plan["scenarios"] if s["companion_dag_id"]]
    rows = lambda: airflow.query("SELECT dag_id FROM dag WHERE is_paused = 0 AND is_stale = 0")  # noqa: E731
    airflow.wait_for("the DAGs", lambda: True if {r["dag_id"] for r in rows()} >= set(dag_ids) else None, 240)
    earliest = min(s["first_run"] - (s["prewake"] or {}).get("max_lead_time", 0) for s in plan["scenarios"])
    if time.time() > earliest:
        print(f"warning: the DAGs were parsed {time.time() - earliest:.0f} s late", file=sys.stderr)
    actions = pool_actions(plan)

    def every_run_finished() -> bool | None:
        while actions and actions[0][0] <= time.time():
            set_slots(actions.pop(0)[1])
        done = _count(airflow, pipelines, True) == len(pipelines) * plan["runs"]
        return True if done and not actions and _count(airflow, dag_ids, False) == 0 else None

    last = max(s["first_run"] for s in plan["scenarios"]) + (plan["runs"] - 1) * plan["period_seconds"]
    airflow.wait_for("every run", every_run_finished, last - time.time() + 300)
    clusters = [s["cluster"] for s in plan["scenarios"]]
    paused = lambda: True if all(emulator.status(c) == "paused" for c in clusters) else None  # noqa: E731
    airflow.wait_for("every cluster paused again", paused, auto_pause + 120)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the emulator and the deployment, and return what they recorded."""
    import run as bench_run  # machine() and git_commit(): one definition of the run's facts
    from e2e_airflow import deployment

    from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Timings

    started = time.time()
    results: dict[str, Any] = {
        "command": " ".join(["python bench/prewake.py", *sys.argv[1:]]),
        "started_at": datetime.fromtimestamp(started, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": bench_run.git_commit(),
        "machine": bench_run.machine(),
        "settings": AIRFLOW_SETTINGS,
        "parallelism": PARALLELISM,
        "resume_seconds": args.resume_seconds,
        "auto_pause_seconds": args.auto_pause,
    }
    plan = make_plan(0.0, period=args.period, runs=args.runs)
    home = Path(tempfile.mkdtemp(prefix="aurora-wake-prewake-"))
    specs = [ClusterSpec(s["cluster"], seconds_until_auto_pause=args.auto_pause) for s in plan["scenarios"]]
    with AuroraEmulator(specs, timings=Timings(resume_seconds=args.resume_seconds)) as emulator:
        extra = {"endpoint_url": emulator.endpoint_url, "region_name": emulator.region}
        aws = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
        env = {**emulator.aws_env(), **AIRFLOW_SETTINGS, "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws)}
        for s in plan["scenarios"]:
            endpoint = emulator.cluster(s["cluster"])
            database = {"host": endpoint.host, "port": endpoint.port, "login": "postgres", "schema": "test"}
            env[f"AIRFLOW_CONN_{s['conn_id'].upper()}"] = json.dumps({"conn_type": "postgres", **database})
        with deployment(home / "airflow", env, parallelism=PARALLELISM) as airflow:
            try:
                shutil.copy(DAG_FILE, airflow.dags_folder)
                airflow.run_cli("db", "migrate", timeout=300)
                first = math.ceil((time.time() + args.start_margin) / 10) * 10
                plan = make_plan(first, period=args.period, runs=args.runs)
                _drive(airflow, emulator, plan, args.auto_pause)
            except AssertionError as exc:  # a wait that failed: keep what was recorded
                results["error"] = str(exc)[:4000]
            results["runs"] = collect(airflow, plan)
            log = airflow.logs_folder / "scheduler.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            results["future_logical_date_logs"] = text.count("Logical date is in future")
            results["leftovers"] = airflow.stop_all()
        results["timelines"] = {
            s["cluster"]: [
                {"at": e.at, "event": e.event, "cause": e.detail.get("cause")}
                for e in emulator.timeline(s["cluster"])
            ]
            for s in plan["scenarios"]
        }
    if not args.keep_home:
        shutil.rmtree(home, ignore_errors=True)
    load = [round(x, 2) for x in os.getloadavg()]
    return {**results, "plan": plan, "seconds": time.time() - started, "load_average_at_end": load}


def main(argv: list[str] | None = None) -> int:
    """Measure, then write the JSON and the section.

    :param argv: the arguments (default ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag, kind, default, text in (
        ("--runs", int, 4, "runs per pipeline (D needs 4 to learn its lead)"),
        ("--period", float, 120.0, "seconds between a pipeline's runs"),
        ("--resume-seconds", float, 15.0, "the emulated resume"),
        ("--auto-pause", int, 40, "SecondsUntilAutoPause of each cluster"),
        ("--start-margin", float, 100.0, "seconds from start-up to the first run"),
        ("--markdown", Path, REPO_ROOT / "docs" / "benchmarks.md", "the report to write the section into"),
        ("--json", Path, REPO_ROOT / "docs" / "prewake.json", "the raw figures"),
    ):
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default: %(default)s)")
    parser.add_argument("--keep-home", action="store_true", help="keep the AIRFLOW_HOME (logs) afterwards")
    parser.add_argument("--from-json", action="store_true", help="only render the section from --json")
    args = parser.parse_args(argv)
    if args.from_json:
        results = json.loads(args.json.read_text())
    else:
        results = measure(args)
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    section = render_section(results)
    print(section)
    if results.get("error"):  # the JSON says what was recorded; the report keeps its last good run
        return 1
    args.markdown.write_text(
        replace_section(args.markdown.read_text() if args.markdown.exists() else "", section)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
