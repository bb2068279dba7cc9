"""The demo's report on stdout: a timeline per cluster, the rows read back, and where the logs are."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_aurora_wake.demo.engines import EngineSetup
from airflow_aurora_wake.demo.example_dag import DEFAULT_DAG, TABLE, DemoDag
from airflow_aurora_wake.demo.sandbox import Folder
from airflow_aurora_wake.demo.timeline import Step, build_steps, describe_cluster, render_timeline
from airflow_aurora_wake.demo.window import WindowEnd
from airflow_aurora_wake.demo.window_timeline import window_steps

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator import AuroraEmulator


def print_report(
    emu: AuroraEmulator,
    engines: Sequence[EngineSetup],
    records: list[dict[str, Any]],
    *,
    skipped: Sequence[str],
    folder: Folder,
    runner_ok: bool,
    keep: bool,
    dag: DemoDag = DEFAULT_DAG,
    windows: Mapping[str, WindowEnd] | None = None,
) -> bool:
    """Print a timeline per cluster and where the logs are; return whether all went well.

    All went well when every DAG run succeeded and, for a warm window, every cluster paused again
    with no hold left.

    :param emu: The emulator, still running (its timelines).
    :param engines: The engines, in the order the runner ran them.
    :param records: The runner's records, one per finished DAG run.
    :param skipped: What the demo said about each engine it skipped (and how to include it).
    :param folder: The demo's folder (the logs).
    :param runner_ok: The runner exited with status 0.
    :param keep: The folder is kept (``--keep``), so the logs are listed even on success.
    :param dag: The example DAG that ran.
    :param windows: For a warm window DAG: how each cluster's window ended, by cluster (a cluster
        that did not pause again, or kept a hold, fails the demo).
    """
    by_label = {record["label"]: record for record in records}
    ok = runner_ok and len(records) == len(engines)
    windows_ok = True
    print()
    for engine in engines:
        record = by_label.get(engine.label)
        if record is None:
            print(f"{engine.cluster}: the DAG run did not finish; see {folder.dags_log}")
            ok = False
            continue
        end = (windows or {}).get(engine.cluster)
        steps = _steps(emu.timeline(engine.cluster), record, dag, end)
        title = (
            f"Timeline of {engine.cluster} ({describe_cluster('serverless-v2', engine.kind.aurora_engine)}), "
            f"DAG run {record['run_id']}: {record['state']}"
        )
        print("\n".join(render_timeline(title, steps)))
        rows = record.get("xcoms", {}).get(dag.read_back_task)
        if rows:
            print(f"  rows read back from {TABLE}: {rows}")
        ok = ok and record["state"] == "success"
        if end is not None:
            windows_ok = _window_end_ok(engine.cluster, end) and windows_ok
        print()
    for note in skipped:
        # Said at the start too, but that line has scrolled away under the progress lines.
        print(note[:1].upper() + note[1:])
    if skipped:
        print()
    if keep or not (ok and windows_ok):
        print("Logs:")
        print(f"  Airflow (dag.test of each run): {folder.dags_log}")
        print(f"  airflow db migrate:             {folder.migrate_log}")
        print(f"  emulator:                       {folder.emulator_log}")
    else:
        print("Logs: Airflow's, the migration's and the emulator's go with the folder (--keep keeps them).")
    if not ok:
        print("A DAG run failed: its task logs are in the Airflow log above.")
    elif not windows_ok:
        print("Every DAG run succeeded, but a warm window did not end as it should (see above).")
    elif dag.window:
        print(
            "Every DAG run succeeded: the ETL ran at the window's floor, each cluster got its own "
            "scaling back and paused again, and no hold is left."
        )
    else:
        print("Every DAG run succeeded: the ETL ran on a warm database.")
    return ok and windows_ok


def _steps(events: Sequence[Any], record: dict[str, Any], dag: DemoDag, end: WindowEnd | None) -> list[Step]:
    if not dag.window:
        return build_steps(events, record)
    if end is None:
        return window_steps(events, record)
    return window_steps(events, record, holds_left=end.holds_left, checked_at=end.checked_at)


def _window_end_ok(cluster: str, end: WindowEnd) -> bool:
    """Say what went wrong at a window's end (no pause again, a hold left); return whether all is well."""
    ok = True
    if end.waited and not end.paused:
        print(
            f"  {cluster} did not pause again within the demo's --timeout: something keeps it awake "
            "(an open connection, a live hold); see the emulator log"
        )
        ok = False
    if end.holds_left:
        print(f"  {cluster} still carries {len(end.holds_left)} hold tag(s): a window was not released")
        ok = False
    return ok
