"""The zero-wait-starts benchmark's report: recorded runs into figures, tables and sentences.

Pure: no Airflow process, no emulator. ``bench/prewake.py`` measures and records; this module
turns its results (``docs/prewake.json``) into the section ``## Zero-wait starts`` of
``docs/benchmarks.md`` and puts it there, keeping every other section.
"""

from __future__ import annotations

from typing import Any

from stats import percentile

SECTION = "## Zero-wait starts"
#: The goal: with pre-wake, the cluster adds at most this to what the scheduler alone takes.
GOAL_SECONDS = 2.0


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
    if run.get("prewake") is None:
        return "none"
    if not task:
        return "no task instance" if run["prewake"].get("run_id") else "no run"
    if not _skipped(run):
        return str(task.get("state"))
    return "skipped (missed)" if "Missed" in note or "has begun" in note else "skipped"


def render_section(results: dict[str, Any]) -> str:
    """The ``## Zero-wait starts`` section of ``docs/benchmarks.md``."""
    rows, machine, plan = summarize(results), results["machine"], results["plan"]
    first = min(s["first_run"] for s in plan["scenarios"])
    staggered = ", ".join(f"{s['key']} {s['first_run'] - first:.0f}" for s in plan["scenarios"])
    t = lambda value: "n/a" if value is None else f"T{value:+.1f}"  # noqa: E731
    on = lambda kind: ", ".join(s["key"] for s in plan["scenarios"] if s["timetable"] == kind) or "none"  # noqa: E731
    lines = [
        SECTION,
        "",
        "A pipeline (`ready >> select_1`: the deferrable ready sensor, then `SELECT 1` through "
        f"`SQLExecuteQueryOperator`) every {plan['period_seconds']:.0f} s on each of {len(rows)} paused "
        f"Serverless v2 clusters of the emulator (resume {results['resume_seconds']:.0f} s, "
        f"`SecondsUntilAutoPause` {results['auto_pause_seconds']} s: each pauses again between runs), "
        f"staggered ({staggered} s into each period), in one real Airflow 3 deployment (scheduler with "
        "LocalExecutor, dag processor, API server, triggerer, SQLite; `tests/e2e/e2e_airflow.py`). "
        f"{on('trigger')}: `schedule=timedelta(seconds={plan['period_seconds']:.0f})`, as users write "
        "it, which Airflow 3 makes a trigger timetable (`DeltaTriggerTimetable`: a run's logical date is "
        f"its start); {on('interval')}: a data-interval timetable (`DeltaDataIntervalTimetable`: a run's "
        "logical date is one period before its start). Measured by `bench/prewake.py` (DAGs: "
        "`bench/prewake_dags/`; report: `bench/prewake_report.py`), not by `bench/run.py`, which keeps "
        "this section:",
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
        "| pipeline | what | timetable | runs ok | T to first task (ready sensor) start, p50 / max "
        "| ready sensor runs, p50 / max | sensor end to SQL task start, p50 / max "
        "| **T to SQL task start**, p50 / max | warm s per run (pre-wake XCom), p50 / max "
        "| awake s per run (ready to auto-pause), p50 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['scenario']['key']} | {r['scenario']['what']} | {r['scenario']['timetable']} "
            f"| {r['succeeded']}/{len(r['runs'])} "
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
                f"* {s['key']}, run {run['run']}: the pre-wake never ran ({_prewake_cell(run)}); the sensor "
                f"waited {_s(f['sensor'])} s{', deferred' if f['deferred'] else ''}."
                for run, f in zip(row["runs"], figures, strict=True)
                if not _prewake_task(run)
            ]
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
    if results.get("future_logical_date_logs") is not None:
        out.append(
            "* The scheduler refused to start a task because its run's logical date was in the future "
            f"(`Logical date is in future` in its log) {results['future_logical_date_logs']} times."
        )
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
