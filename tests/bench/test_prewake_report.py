"""The zero-wait-starts benchmark's pure parts: recorded runs into figures and tables, the section
it writes into docs/benchmarks.md, and how it pairs each run with its pre-wake (no Airflow
process, no emulator)."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH_DIR))

import prewake  # noqa: E402
import prewake_report  # noqa: E402
import report  # noqa: E402

T0 = 1_800_000_000.0
PERIOD = 120.0


def task(start: float, end: float, *, deferred: bool = False) -> dict[str, Any]:
    return {"state": "success", "try_number": 1, "start": start, "end": end, "deferred": deferred}


def run(
    key: str, number: int, start: float, sensor: float, hop: float, prewake: Any = None
) -> dict[str, Any]:
    """A recorded pipeline run: the sensor starts 2 s after ``start``, runs ``sensor`` s, then the hop."""
    ready_end = start + 2.0 + sensor
    return {
        "scenario": key,
        "run": number,
        "state": "success",
        "run_after": start,
        "created_at": start + 0.5,
        "ready": task(start + 2.0, ready_end, deferred=sensor > 5),
        "sql": task(ready_end + hop, ready_end + hop + 1.0),
        "prewake": prewake,
    }


def prewake_record(warm: float | None, lead: float, *, skipped: bool = False) -> dict[str, Any]:
    if skipped:
        note = "DAG 'p' will next run for x, after this one (y): that run will not happen or has begun."
        return {"state": "success", "task": {"state": "skipped", "xcom": None, "note": note}}
    xcom = {"warm_seconds": warm, "lead_seconds": lead, "lead_basis": f"set: {lead:g} s"}
    return {"state": "success", "task": {"state": "success", "xcom": xcom, "note": None}}


@pytest.fixture
def results() -> dict[str, Any]:
    """A with pre-wake (cluster ready 12 s before each run), B without (resumes at T+3), two runs each."""
    plan = prewake.make_plan(T0, period=PERIOD, runs=2)
    plan["scenarios"] = [s for s in plan["scenarios"] if s["key"] in ("A", "B")]
    a_start, b_start = (s["first_run"] for s in plan["scenarios"])
    runs = [
        run("A", 1, a_start, 0.4, 3.0, prewake_record(12.0, 30.0)),
        run("A", 2, a_start + PERIOD, 0.8, 5.0, prewake_record(11.0, 30.0)),
        run("B", 1, b_start, 18.0, 3.0),
        run("B", 2, b_start + PERIOD, 20.0, 4.0),
    ]
    timelines = {}
    for scenario, first, resume_at in (("A", a_start, -27.0), ("B", b_start, 3.0)):
        events = []
        for k in range(2):
            start = first + k * PERIOD
            events += [
                {"at": start + resume_at, "event": "resume-requested", "cause": "connection"},
                {"at": start + resume_at + 15.0, "event": "ready", "cause": None},
                {"at": start + resume_at + 75.0, "event": "auto-paused", "cause": None},
            ]
        timelines[next(s["cluster"] for s in plan["scenarios"] if s["key"] == scenario)] = events
    machine = {
        "cpu": "test CPU",
        "logical_cores": 2,
        "memory_gib": 4.0,
        "versions": {"apache-airflow": "3.3.2"},
        "postgresql_upstream": "15",
        "load_average_at_start": [1.0, 1.0, 1.0],
    }
    return {
        "command": "python bench/prewake.py",
        "started_at": "2027-01-15 08:00 UTC",
        "seconds": 600.0,
        "commit": "abc1234",
        "machine": machine,
        "settings": prewake.AIRFLOW_SETTINGS,
        "parallelism": prewake.PARALLELISM,
        "resume_seconds": 15.0,
        "auto_pause_seconds": 40,
        "load_average_at_end": [1.0, 1.0, 1.0],
        "plan": plan,
        "runs": runs,
        "timelines": timelines,
        "leftovers": [],
    }


def test_each_run_is_measured_from_its_scheduled_start(results: dict[str, Any]) -> None:
    rows = {row["scenario"]["key"]: row for row in prewake_report.summarize(results)}
    a, b = rows["A"], rows["B"]
    assert [f["to_sql"] for f in a["figures"]] == pytest.approx([5.4, 7.8])
    assert a["to_sql"] == pytest.approx({"p50": 6.6, "max": 7.8})
    assert a["first_task"] == pytest.approx({"p50": 2.0, "max": 2.0})
    assert b["sensor"] == pytest.approx({"p50": 19.0, "max": 20.0})
    assert b["warm"] == {"p50": None, "max": None}
    assert a["warm"] == pytest.approx({"p50": 11.5, "max": 12.0})
    # The cluster's resume for each run, from its timeline, relative to the run's start.
    assert [f["cluster"]["resume_requested"] for f in a["figures"]] == pytest.approx([-27.0, -27.0])
    assert [f["cluster"]["ready"] for f in b["figures"]] == pytest.approx([18.0, 18.0])
    assert [f["cluster"]["awake"] for f in b["figures"]] == pytest.approx([60.0, 60.0])
    assert [f["deferred"] for f in b["figures"]] == [True, True]


def test_the_section_states_the_verdict_and_every_run(results: dict[str, Any]) -> None:
    section = prewake_report.render_section(results)
    assert section.startswith(prewake_report.SECTION + "\n")
    assert "**Goal**" in section and "**PASS**" in section
    assert (
        "| A | pre-wake, lead 30 s | trigger | 2/2 | 2.0 / 2.0 | 0.6 / 0.8 | 4.0 / 5.0 | **6.6 / 7.8** |"
        in section
    )
    assert "A, B: `schedule=timedelta(seconds=120)`" in section
    assert "none: a data-interval timetable" in section
    assert "| B | 1 | none | - | T+3.0 | T+18.0 | n/a | 18.0 s, deferred | T+23.0 | 60.0 |" in section
    assert (
        "| A | 2 | success | 30.0 s (set) | T-27.0 (3.0) | T-12.0 | +11.0 | 0.8 s | T+7.8 | 60.0 |" in section
    )


def test_a_cluster_wait_beyond_the_goal_is_a_miss(results: dict[str, Any]) -> None:
    slow = results["runs"][1]
    slow["ready"]["end"] += 2.5  # the sensor on a cluster not yet warm: 3.3 s
    slow["sql"]["start"] += 2.5
    assert "**MISS**" in prewake_report.render_section(results)


def test_a_missed_prewake_is_reported_with_its_reason_and_counts_against_the_goal(
    results: dict[str, Any],
) -> None:
    missed = results["runs"][1]
    missed["prewake"] = prewake_record(None, 30.0, skipped=True)
    missed["ready"].update(end=missed["ready"]["end"] + 17.0, deferred=True)  # it waited for the resume
    section = prewake_report.render_section(results)
    assert "| A | 2 | skipped (missed) | - |" in section
    assert "* A, run 2: the pre-wake skipped (DAG 'p' will next run for x" in section
    assert "the sensor waited 17.8 s, as without pre-wake" in section
    assert "**MISS**" in section


def test_the_section_replaces_its_previous_version_and_keeps_the_others() -> None:
    other = "# Benchmarks\n\nintro\n\n## Several triggerers\n\nkept text\n"
    first = prewake_report.replace_section(other, f"{prewake_report.SECTION}\n\nold figures\n")
    assert first == other + f"\n{prewake_report.SECTION}\n\nold figures\n"
    second = prewake_report.replace_section(first, f"{prewake_report.SECTION}\n\nnew figures\n")
    assert second == other + f"\n{prewake_report.SECTION}\n\nnew figures\n"
    # Between two sections, only its own text changes.
    middle = f"# B\n\n{prewake_report.SECTION}\n\nold\n\n## Later\n\nlater text\n"
    replaced = prewake_report.replace_section(middle, f"{prewake_report.SECTION}\n\nnew\n")
    assert replaced == f"# B\n\n{prewake_report.SECTION}\n\nnew\n\n## Later\n\nlater text\n"


def test_bench_run_keeps_the_section_when_it_rewrites_the_report() -> None:
    assert prewake_report.SECTION in report.KEPT_SECTIONS
    previous = f"# Benchmarks\n\nold\n\n{prewake_report.SECTION}\n\nfigures\n"
    assert report.kept_sections(previous) == f"\n{prewake_report.SECTION}\n\nfigures\n"


def test_the_held_pool_opens_only_after_the_held_run_started() -> None:
    plan = prewake.make_plan(T0, period=PERIOD, runs=4)
    held = next(s for s in plan["scenarios"] if s["key"] == "C")
    start = held["first_run"] + (prewake.HELD_RUN - 1) * PERIOD
    assert prewake.pool_actions(plan) == [
        (start - prewake.HOLD_BEFORE, 0),
        (start + prewake.RELEASE_AFTER, 1),
    ]
    assert prewake.pool_actions(prewake.make_plan(T0, period=PERIOD, runs=prewake.HELD_RUN - 1)) == []


def test_a_prewake_run_without_its_task_is_reported_as_never_run(results: dict[str, Any]) -> None:
    # Airflow creates no task instance for a run dated before its task's start date.
    results["runs"][0]["prewake"] = {"run_id": "scheduled__x", "state": "success", "task": {}}
    results["future_logical_date_logs"] = 0
    section = prewake_report.render_section(results)
    assert "| A | 1 | no task instance | - |" in section
    assert "* A, run 1: the pre-wake never ran (no task instance); the sensor waited 0.4 s." in section
    assert "`Logical date is in future` in its log) 0 times." in section


def iso(epoch: float) -> str:
    """A timestamp as the SQLite metadata database stores it."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


class RecordedAirflow:
    """The few reads :func:`prewake.collect` makes, answered from a list of DAG runs."""

    def __init__(self, home: Path, runs: list[dict[str, Any]]) -> None:
        self.home, self.runs = home, runs

    def query(self, sql: str, dag_id: str) -> list[dict[str, Any]]:
        assert sql.startswith("SELECT * FROM dag_run WHERE dag_id = ?")
        return sorted((r for r in self.runs if r["dag_id"] == dag_id), key=lambda r: r["run_after"])

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        row = {"state": "success", "try_number": 1, "scheduled_dttm": None, "queued_dttm": None,
               "start_date": None, "end_date": None}  # fmt: skip
        tasks = ("prewake",) if dag_id.endswith("__aurora_prewake") else ("ready", "select_1")
        return dict.fromkeys(tasks, row)

    def task_log(self, *args: Any) -> None:
        return None

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        return {"run_id": run_id} if task_id == "prewake" else None


def dag_run(dag_id: str, run_after: float, logical_date: float) -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "run_id": f"scheduled__{run_after:.0f}",
        "state": "success",
        "run_after": iso(run_after),
        "logical_date": iso(logical_date),
        "created_at": iso(run_after),
    }


def test_each_run_is_paired_with_the_prewake_run_max_lead_before_it(tmp_path: Path) -> None:
    plan = prewake.make_plan(T0, period=PERIOD, runs=2)
    plan["scenarios"] = [s for s in plan["scenarios"] if s["key"] in ("A", "E")]
    a, e = plan["scenarios"]
    assert (a["timetable"], e["timetable"]) == ("trigger", "interval")
    runs = []
    for s in (a, e):
        lead = s["prewake"]["max_lead_time"]
        for k in range(2):
            start = s["first_run"] + k * PERIOD
            # A trigger run's logical date is its start; a data-interval run's, a period earlier.
            logical = start if s["timetable"] == "trigger" else start - PERIOD
            # The companion run is the pipeline run moved the lead earlier, logical date included.
            runs += [
                dag_run(s["dag_id"], start, logical),
                dag_run(s["companion_dag_id"], start - lead, logical - lead),
            ]
    records = prewake.collect(RecordedAirflow(tmp_path, runs), plan)
    assert [(r["scenario"], r["run"]) for r in records] == [("A", 1), ("A", 2), ("E", 1), ("E", 2)]
    for record, s in zip(records, (a, a, e, e), strict=True):
        start = s["first_run"] + (record["run"] - 1) * PERIOD
        assert record["run_after"] == start
        assert record["prewake"]["run_after"] == start - s["prewake"]["max_lead_time"]
        assert record["prewake"]["task"]["xcom"] == {"run_id": record["prewake"]["run_id"]}
