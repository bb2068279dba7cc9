"""Watching the DAG runs: a progress line per change in the emulator's timeline and the tasks' states."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_aurora_wake.demo.engines import EngineSetup
from airflow_aurora_wake.demo.example_dag import DEFAULT_DAG, DemoDag
from airflow_aurora_wake.demo.progress import Progress
from airflow_aurora_wake.demo.timeline import resume_text
from airflow_aurora_wake.demo.window_timeline import scaling_change_text

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator import AuroraEmulator, TimelineEvent

_EVENT_TEXT = {
    "paused": 'paused (RDS still says "available")',
    "ready": "ready: accepts connections",
    "capacity-available": "capacity available",
}


def describe_event(event: TimelineEvent) -> str | None:
    """A progress line for one emulator timeline event (``None``: not worth a line).

    :param event: The event.
    """
    if event.event == "created":
        return None
    detail = event.detail or {}
    if event.event == "resume-requested":
        expected = detail.get("ready_expected_at")
        when = f", ready in {expected - event.at:.0f} s" if expected else ""
        return f"{resume_text(detail.get('cause', '?'), 'requested')}{when}"
    if event.event == "scaling-changed":
        return f"scaling changed (ModifyDBCluster): {scaling_change_text(detail)}"
    if event.event == "auto-paused":
        return f"paused again after {detail.get('idle_seconds', '?')} s idle (SecondsUntilAutoPause)"
    return _EVENT_TEXT.get(event.event, event.event)


def _read(db_path: Path, sql: str, dag_id: str) -> list[tuple[str, ...]]:
    """Rows of a query on the example DAG (its one parameter), read-only; ``[]`` when unreadable."""
    if not db_path.exists():
        return []
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.2)
        try:
            rows = db.execute(sql, (dag_id,)).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return []
    return [tuple(str(value) for value in row) for row in rows]


def task_states(db_path: Path, dag: DemoDag = DEFAULT_DAG) -> list[tuple[str, str, str]]:
    """``(run_id, task_id, state)`` of the example DAG's task instances, read-only, or ``[]``.

    :param db_path: The demo's SQLite metadata database.
    :param dag: The example DAG.
    """
    rows = _read(
        db_path,
        "SELECT run_id, task_id, state FROM task_instance WHERE dag_id = ? AND state IS NOT NULL",
        dag.dag_id,
    )
    order = {task_id: index for index, task_id in enumerate(dag.task_order)}
    found = [(run_id, task_id, state) for run_id, task_id, state in rows]
    return sorted(found, key=lambda row: order.get(row[1], len(order)))


def deferrals(db_path: Path, dag: DemoDag = DEFAULT_DAG) -> list[tuple[str, str]]:
    """``(run_id, task_id)`` of the example DAG's task instances that deferred, from Airflow's audit log.

    ``dag.test()`` runs the trigger inline and shows the task instance ``deferred`` for only
    milliseconds, too briefly for :func:`task_states` to see; the audit log keeps the event.

    :param db_path: The demo's SQLite metadata database.
    :param dag: The example DAG.
    """
    rows = _read(
        db_path,
        "SELECT run_id, task_id FROM log WHERE dag_id = ? AND event = 'deferred' ORDER BY id",
        dag.dag_id,
    )
    return [(run_id, task_id) for run_id, task_id in rows]


@dataclass
class Watch:
    """What the demo saw while the DAG runs ran: one progress line per change.

    :param emu: The running emulator.
    :param engines: The engines, in the order the runner runs them.
    :param db_path: The SQLite metadata database.
    :param progress: Where to print.
    :param dag: The example DAG that runs.
    """

    emu: AuroraEmulator
    engines: Sequence[EngineSetup]
    db_path: Path
    progress: Progress
    dag: DemoDag = DEFAULT_DAG
    seen_events: dict[str, int] = field(default_factory=dict)
    states: dict[tuple[str, str], str] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)
    deferred: set[tuple[str, str]] = field(default_factory=set)

    def poll(self) -> None:
        """Print what changed since the last poll."""
        for engine in self.engines:
            events = self.emu.timeline(engine.cluster)
            for event in events[self.seen_events.get(engine.cluster, 0) :]:
                text = describe_event(event)
                if text:
                    self.progress.say(f"{engine.cluster}: {text}")
            self.seen_events[engine.cluster] = len(events)
        for run_id, task_id, state in task_states(self.db_path, self.dag):
            if run_id not in self.run_ids:
                self.run_ids.append(run_id)
            if self.states.get((run_id, task_id)) == state:
                continue
            self.states[(run_id, task_id)] = state
            if state == "deferred":
                self._deferred(run_id, task_id)
            elif state not in ("scheduled", "queued", "none"):
                self.progress.say(f"{self._cluster(run_id)}: task {task_id} {state}")
        for run_id, task_id in deferrals(self.db_path, self.dag):
            self._deferred(run_id, task_id)

    def _cluster(self, run_id: str) -> str:
        index = self.run_ids.index(run_id) if run_id in self.run_ids else len(self.engines)
        return self.engines[index].cluster if index < len(self.engines) else run_id

    def _deferred(self, run_id: str, task_id: str) -> None:
        """Say once that a task deferred, whether its state or the audit log showed it first."""
        if (run_id, task_id) in self.deferred:
            return
        self.deferred.add((run_id, task_id))
        self.progress.say(
            f"{self._cluster(run_id)}: task {task_id} deferred (worker slot released; its trigger "
            "waits in the triggerer)"
        )

    def status(self) -> str:
        """One phrase: what the demo is waiting for now."""
        phases = ", ".join(f"{e.cluster} {self.emu.status(e.cluster)}" for e in self.engines)
        running = [task for (_, task), state in self.states.items() if state in ("running", "deferred")]
        return f"clusters: {phases}" + (f"; task {running[-1]} running" if running else "")
