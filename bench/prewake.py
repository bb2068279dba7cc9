"""Zero-wait starts: pipelines on paused clusters, with and without pre-wake, in a real Airflow 3.

One deployment (scheduler with LocalExecutor, dag processor, API server, triggerer, as the
end-to-end tests start them: ``tests/e2e/e2e_airflow.py``) runs ``ready >> select_1`` every
``--period`` seconds on each of five paused Serverless v2 clusters of the emulator
(``SCENARIOS`` in ``prewake_dags/bench_prewake.py``: A pre-wake, B none, C late and missed, D
learned lead, E pre-wake on a trigger timetable). Per run it records, from Airflow's metadata
database and the emulator's timeline, the scheduled start, when the ready sensor and the SQL
task started, whether the sensor deferred, the companion's XCom, and the cluster's resume and
pause. It writes the section
``## Zero-wait starts`` of ``docs/benchmarks.md`` (kept by ``bench/run.py``) and
``docs/prewake.json``. About 10 minutes; needs the local PostgreSQL server (127.0.0.1:5432)::

    .venv/bin/python bench/prewake.py
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
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR / "prewake_dags")]

from bench_prewake import HELD_POOL, HELD_RUN, PLAN_VARIABLE, make_plan  # noqa: E402
from stats import percentile  # noqa: E402

SECTION = "## Zero-wait starts"
DAG_FILE = BENCH_DIR / "prewake_dags" / "bench_prewake.py"
#: C's held pre-wake: its pool gets no slot from HOLD_BEFORE s before that run's start until
#: RELEASE_AFTER s after it.
HOLD_BEFORE, RELEASE_AFTER = 60.0, 10.0
#: The goal: with pre-wake, the cluster adds at most this to what the scheduler alone takes.
GOAL_SECONDS = 2.0
#: Executor slots: a pipeline's task and a pre-wake's can run at once, with room to spare.
PARALLELISM = 4
#: What this benchmark sets on top of the end-to-end deployment's settings.
AIRFLOW_SETTINGS = {
    # The scheduler loop sleeps this long when it found nothing to do (default 1 s).
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
    # Parse the DAG file once: a re-parse every 30 s (the default) competes for the two cores.
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
}


def pool_actions(plan: dict[str, Any]) -> list[tuple[float, int]]:
    """When to set :data:`HELD_POOL`'s slots, as ``(epoch, slots)``, to hold back one pre-wake."""
    actions: list[tuple[float, int]] = []
    for s in plan["scenarios"]:
        if (s["prewake"] or {}).get("pool") == HELD_POOL and plan["runs"] >= HELD_RUN:
            start = s["first_run"] + (HELD_RUN - 1) * plan["period_seconds"]
            actions += [(start - HOLD_BEFORE, 0), (start + RELEASE_AFTER, 1)]
    return sorted(actions)


# ------------------------------------------------------------------- figures (pure)
def _since(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


def _first(events: list[dict[str, Any]], name: str, since: float) -> float | None:
    return next((e["at"] for e in events if e["event"] == name and e["at"] >= since), None)


def cluster_view(events: list[dict[str, Any]], run_after: float, period: float) -> dict[str, Any]:
    """The cluster's resume for one run, relative to its start: the first ``resume-requested``
    within half a period of it, then the first ``ready`` and ``auto-paused`` after that.

    :param events: the cluster's timeline (``at`` epoch, ``event``, ``cause``), oldest first.
    :param run_after: the run's scheduled start.
    :param period: seconds between runs.
    """
    near = [
        e["at"] for e in events if e["event"] == "resume-requested" and abs(e["at"] - run_after) < period / 2
    ]
    ready = _first(events, "ready", near[0]) if near else None
    paused = _first(events, "auto-paused", ready) if ready else None
    return {"resumes": len(near), "resume_requested": _since(near[0] if near else None, run_after),
            "ready": _since(ready, run_after), "awake": _since(paused, ready)}  # fmt: skip


def run_figures(run: dict[str, Any], events: list[dict[str, Any]], period: float) -> dict[str, Any]:
    """Seconds of one pipeline run from its scheduled start T (``run_after``), and its pre-wake's.

    :param run: the run's record (see :func:`collect`).
    :param events: its cluster's timeline.
    :param period: seconds between runs.
    """
    start, ready, sql = run["run_after"], run["ready"], run["sql"]
    xcom = ((run.get("prewake") or {}).get("task") or {}).get("xcom") or {}
    return {
        "first_task": _since(ready.get("start"), start),
        "sensor": _since(ready.get("end"), ready.get("start")),
        "hop": _since(sql.get("start"), ready.get("end")),
        "to_sql": _since(sql.get("start"), start),
        "deferred": ready.get("deferred"),
        "warm": xcom.get("warm_seconds"),
        "lead": xcom.get("lead_seconds"),
        "lead_basis": xcom.get("lead_basis"),
        "cluster": cluster_view(events, start, period),
    }


def _p(values: list[float | None], q: float) -> float | None:
    return percentile([v for v in values if v is not None], q)


def summarize(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per scenario, in key order: its runs, their figures, and the p50/max of each delay."""
    rows = []
    for s in sorted(results["plan"]["scenarios"], key=lambda s: s["key"]):
        runs = [r for r in results["runs"] if r["scenario"] == s["key"]]
        events = results["timelines"].get(s["cluster"], [])
        figures = [run_figures(r, events, results["plan"]["period_seconds"]) for r in runs]
        row: dict[str, Any] = {"scenario": s, "runs": runs, "figures": figures}
        for name in ("first_task", "sensor", "hop", "to_sql", "warm", "awake"):
            values = [f["cluster"]["awake"] if name == "awake" else f[name] for f in figures]
            row[name] = {key: _p(values, q) for key, q in (("p50", 50), ("max", 100))}
        rows.append({**row, "succeeded": sum(r["state"] == "success" for r in runs)})
    return rows


def _s(value: float | None, sign: bool = False) -> str:
    return "n/a" if value is None else (f"{value:+.1f}" if sign else f"{value:.1f}")


def _pm(figure: dict[str, float | None]) -> str:
    return f"{_s(figure['p50'])} / {_s(figure['max'])}"


def _lead(figure: dict[str, Any]) -> str:
    """The lead and the first word of its basis: ``set``, ``default`` or ``learned``."""
    basis = figure["lead_basis"] or "?"
    word = basis.split(":")[0].split()[0] + (", capped" if "capped" in basis else "")
    return "-" if figure["lead"] is None else f"{_s(figure['lead'])} s ({word})"


def _late(figure: dict[str, Any]) -> str:
    """How long after T - lead the wake went out (a worker sends it: when the pre-wake task starts
    if the lead is ``max_lead_time``, else when it resumes after its time trigger fired)."""
    requested = figure["cluster"]["resume_requested"]
    return "" if figure["lead"] is None or requested is None else f" ({requested + figure['lead']:.1f})"


def _prewake_task(run: dict[str, Any]) -> dict[str, Any]:
    return (run.get("prewake") or {}).get("task") or {}


def _skipped(run: dict[str, Any]) -> bool:
    return _prewake_task(run).get("state") == "skipped"


def _prewake_cell(run: dict[str, Any]) -> str:
    task, note = _prewake_task(run), _prewake_task(run).get("note") or ""
    if run.get("prewake") is None or not _skipped(run):
        return "none" if run.get("prewake") is None else str(task.get("state") or "not created")
    return "skipped (missed)" if "Missed" in note or "has begun" in note else "skipped"


def render_section(results: dict[str, Any]) -> str:
    """The ``## Zero-wait starts`` section of ``docs/benchmarks.md``."""
    rows, machine, plan = summarize(results), results["machine"], results["plan"]
    first = min(s["first_run"] for s in plan["scenarios"])
    staggered = ", ".join(f"{s['key']} {s['first_run'] - first:.0f}" for s in plan["scenarios"])
    t = lambda value: "n/a" if value is None else f"T{value:+.1f}"  # noqa: E731
    lines = [
        SECTION,
        "",
        "A pipeline (`ready >> select_1`: the deferrable ready sensor, then `SELECT 1` through "
        f"`SQLExecuteQueryOperator`) every {plan['period_seconds']:.0f} s on each of {len(rows)} paused "
        f"Serverless v2 clusters of the emulator (resume {results['resume_seconds']:.0f} s, "
        f"`SecondsUntilAutoPause` {results['auto_pause_seconds']} s: each pauses again between runs), "
        f"staggered ({staggered} s into each period), in one real Airflow 3 deployment (scheduler with "
        "LocalExecutor, dag processor, API server, triggerer, SQLite; `tests/e2e/e2e_airflow.py`). A to D "
        "run on a data-interval timetable (`DeltaDataIntervalTimetable`: a run's logical date is one "
        "period before its start), E on a trigger timetable (`DeltaTriggerTimetable`, what Airflow 3 "
        "makes of a cron or timedelta `schedule` by default: the logical date is the start). Measured by "
        "`bench/prewake.py` (DAGs: `bench/prewake_dags/`), not by `bench/run.py`, which keeps this section:",
        "",
        f"```console\n$ {results['command']}\n```",
        "",
        f"* Run {results['started_at']}, {results['seconds']:.0f} s in all, commit `{results.get('commit')}`"
        ".",
        f"* Machine: {machine['cpu']}, {machine['logical_cores']} logical cores, {machine['memory_gib']} GiB;"
        f" load average {machine['load_average_at_start']} at start, {results['load_average_at_end']} at "
        "the end (shared: figures are noisy).",
        f"* Versions: {', '.join(f'{k} {v}' for k, v in machine['versions'].items() if v)}; "
        f"PostgreSQL {machine['postgresql_upstream']}.",
        f"* Airflow settings: {', '.join(f'`{k}={v}`' for k, v in results['settings'].items())}, "
        f"`[core] parallelism` {results['parallelism']}, and the end-to-end deployment's "
        "(`[triggerer] job_heartbeat_sec` 2, `[dag_processor] refresh_interval` 5).",
        "* Times in seconds from the run's scheduled start T (`run_after`); raw figures: `prewake.json`. "
        '"Late by": how long after T - lead the wake went out (a worker sends it when the pre-wake '
        "task starts, if the lead is `max_lead_time`, else when the task resumes after its time trigger).",
        "",
        "| pipeline | what | runs ok | T to first task (ready sensor) start, p50 / max | ready sensor "
        "runs, p50 / max | sensor end to SQL task start, p50 / max | **T to SQL task start**, p50 / max "
        "| warm s per run (pre-wake XCom), p50 / max | awake s per run (ready to auto-pause), p50 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['scenario']['key']} | {r['scenario']['what']} | {r['succeeded']}/{len(r['runs'])} "
            f"| {_pm(r['first_task'])} | {_pm(r['sensor'])} | {_pm(r['hop'])} | **{_pm(r['to_sql'])}** "
            f"| {_pm(r['warm'])} | {_s(r['awake']['p50'])} |"
            for r in rows
        ),
        "",
        "| pipeline | run | pre-wake | lead | resume requested (late by) | cluster ready | warm s "
        "| ready sensor | SQL task starts | awake, ready to auto-pause |",
        "|---|---:|---|---|---:|---:|---:|---|---:|---:|",
        *(
            f"| {r['scenario']['key']} | {run['run']} | {_prewake_cell(run)} | {_lead(f)} "
            f"| {t(f['cluster']['resume_requested'])}{_late(f)} | {t(f['cluster']['ready'])} "
            f"| {_s(f['warm'], sign=True)} | {_s(f['sensor'])} s{', deferred' if f['deferred'] else ''} "
            f"| {t(f['to_sql'])} | {_s(f['cluster']['awake'])} |"
            for r in rows
            for run, f in zip(r["runs"], r["figures"], strict=True)
        ),
        "",
    ]
    return "\n".join([*lines, *_findings(rows, results)]) + "\n"


def _findings(rows: list[dict[str, Any]], results: dict[str, Any]) -> list[str]:
    """The verdict and what the tables show, in sentences computed from them."""
    goal = [f for row in rows if row["scenario"]["goal"] for f in row["figures"]]
    waits = [f["sensor"] for f in goal if f["sensor"] is not None]
    everything = [f for row in rows for f in row["figures"]]
    firsts, hops = [f["first_task"] for f in everything], [f["hop"] for f in everything]
    passed = bool(waits) and len(waits) == len(goal) and max(waits) <= GOAL_SECONDS
    out = [
        f"**Goal** (with pre-wake, the first SQL task starts within {GOAL_SECONDS:.0f} s of what the "
        f"scheduler alone takes): **{'PASS' if passed else 'MISS'}**. In the pre-wake runs of "
        f"{', '.join(r['scenario']['key'] for r in rows if r['scenario']['goal'])} the cluster added at most "
        f"{_s(max(waits, default=None))} s, the ready sensor's whole run "
        f"({sum(bool(f['deferred']) for f in goal)} of {len(goal)} deferred). The scheduler's own time is "
        f"the rest: from the scheduled start to the first task's start p50 {_s(_p(firsts, 50))} s, max "
        f"{_s(_p(firsts, 100))} s (creating the run, queueing the task, starting the task process), and "
        f"from one task's end to the next one's start p50 {_s(_p(hops, 50))} s, max {_s(_p(hops, 100))} s, "
        "over all runs. The SQL task started "
        + "; ".join(f"{r['scenario']['key']} {_pm(r['to_sql'])} s" for r in rows if r["scenario"]["goal"])
        + " (p50 / max) after T with pre-wake, "
        + "; ".join(
            f"{r['scenario']['key']} {_pm(r['to_sql'])} s" for r in rows if not r["scenario"]["prewake"]
        )
        + " without.",
    ]
    for row in rows:
        s, figures, skipped = row["scenario"], row["figures"], [r for r in row["runs"] if _skipped(r)]
        if s["prewake"] is None:
            out.append(
                f"* {s['key']}, without pre-wake: the sensor found the cluster paused and waited p50 "
                f"{_s(row['sensor']['p50'])} s (its connection attempt started the resume)."
            )
        elif skipped and len(skipped) == len(row["runs"]):
            out.append(
                f"* {s['key']}: every pre-wake skipped (run 1: {_prewake_task(skipped[0]).get('note')}); the "
                f"sensor waited p50 {_s(row['sensor']['p50'])} s, as without pre-wake."
                + (
                    " Airflow's scheduler starts no task of a run whose logical date is in the future (it "
                    f"logged `Logical date is in future` {results.get('future_logical_date_logs')} times), "
                    "and a companion run carries the logical date of the run it prepares, which on a "
                    "trigger timetable is that run's start: the pre-wake task could start only at T."
                    if s["timetable"] == "trigger"
                    else ""
                )
            )
        else:
            late = [f["warm"] for f in figures if f["warm"] is not None and f["warm"] < 0]
            bases = [(run["run"], f) for run, f in zip(row["runs"], figures, strict=True) if f["lead_basis"]]
            learned = [(number, f) for number, f in bases if f["lead_basis"].startswith("learned")]
            if late:
                out.append(
                    f"* {s['key']}: the lead was shorter than the resume; in {len(late)} runs the cluster "
                    f"was ready {_s(-max(late))} to {_s(-min(late))} s after T; the sensor waited until then."
                )
            if learned and bases[0][1] is not learned[0][1]:
                out.append(
                    f"* {s['key']}: lead {_lead(bases[0][1])} until run {learned[0][0]}, then "
                    f"{_s(learned[0][1]['lead'])} s ({learned[0][1]['lead_basis']}); warm seconds "
                    f"{_s(bases[0][1]['warm'])} then {_s(learned[0][1]['warm'])}."
                )
            out += [
                f"* {s['key']}, run {run['run']}: the pre-wake skipped ({_prewake_task(run).get('note')}); "
                f"the sensor waited {_s(f['sensor'])} s, as without pre-wake."
                for run, f in zip(row["runs"], figures, strict=True)
                if _skipped(run)
            ]
    timelines = {r["scenario"]["key"]: results["timelines"][r["scenario"]["cluster"]] for r in rows}
    pauses = {key: sum(e["event"] == "auto-paused" for e in events) for key, events in timelines.items()}
    regular = all(n >= results["plan"]["runs"] for n in pauses.values())
    regular = regular and all(f["cluster"]["resumes"] == 1 for f in everything)
    out += [
        f"* Auto-pauses per cluster: {', '.join(f'{k} {n}' for k, n in pauses.items())}"
        + ("; every run found its cluster paused and resumed it once." if regular else "; see the JSON."),
        f"* Processes left running after the deployment stopped: {len(results.get('leftovers', []))}.",
    ]
    if results.get("error"):
        out.append(f"* The run did not complete: {results['error'].splitlines()[0]}")
    return out


def replace_section(text: str, section: str) -> str:
    """``text`` with its ``## Zero-wait starts`` section (up to the next ``## `` heading or the
    end) replaced by ``section``, or with ``section`` appended; every other section is kept.

    :param text: the Markdown file's text.
    :param section: the new section, starting with its heading.
    """
    start = text.find(f"\n{SECTION}\n")
    if start < 0:
        return text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    following = text.find("\n## ", start + 1)
    return text[: start + 1] + section.rstrip("\n") + "\n" + ("" if following < 0 else text[following:])


# ------------------------------------------------------------------- the measurement
def _epoch(value: str | None) -> float | None:
    from e2e_records import epoch

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
    """Every pipeline run with its tasks, and its pre-wake (the companion run of the same logical
    date), from Airflow's metadata database and task logs."""

    def runs(dag_id: str | None) -> dict[int, dict[str, Any]]:
        rows = airflow.query("SELECT * FROM dag_run WHERE dag_id = ? ORDER BY run_after", dag_id or "")
        return {
            round(_epoch(r["logical_date"]) or 0): {
                "run_id": r["run_id"], "state": r["state"], "run_after": _epoch(r["run_after"]),
                "created_at": _epoch(r["created_at"]),
            }
            for r in rows
        }  # fmt: skip

    records = []
    for s in plan["scenarios"]:
        companions = runs(s["companion_dag_id"])
        for number, (date, run) in enumerate(runs(s["dag_id"]).items(), 1):
            prewake = companions.get(date)
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
    sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))
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
