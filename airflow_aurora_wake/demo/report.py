"""The demo's report on stdout: a timeline per cluster, the rows read back, and where the logs are."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_aurora_wake.demo.engines import EngineSetup
from airflow_aurora_wake.demo.example_dag import TABLE
from airflow_aurora_wake.demo.sandbox import Folder
from airflow_aurora_wake.demo.timeline import build_steps, describe_cluster, render_timeline

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
) -> bool:
    """Print a timeline per cluster and where the logs are; return whether every DAG run succeeded.

    :param emu: The emulator, still running (its timelines).
    :param engines: The engines, in the order the runner ran them.
    :param records: The runner's records, one per finished DAG run.
    :param skipped: What the demo said about each engine it skipped (and how to include it).
    :param folder: The demo's folder (the logs).
    :param runner_ok: The runner exited with status 0.
    :param keep: The folder is kept (``--keep``), so the logs are listed even on success.
    """
    by_label = {record["label"]: record for record in records}
    ok = runner_ok and len(records) == len(engines)
    print()
    for engine in engines:
        record = by_label.get(engine.label)
        if record is None:
            print(f"{engine.cluster}: the DAG run did not finish; see {folder.dags_log}")
            ok = False
            continue
        steps = build_steps(emu.timeline(engine.cluster), record)
        title = (
            f"Timeline of {engine.cluster} ({describe_cluster('serverless-v2', engine.kind.aurora_engine)}), "
            f"DAG run {record['run_id']}: {record['state']}"
        )
        print("\n".join(render_timeline(title, steps)))
        rows = record.get("xcoms", {}).get("read_back")
        if rows:
            print(f"  rows read back from {TABLE}: {rows}")
        ok = ok and record["state"] == "success"
        print()
    for note in skipped:
        # Said at the start too, but that line has scrolled away under the progress lines.
        print(note[:1].upper() + note[1:])
    if skipped:
        print()
    if keep or not ok:
        print("Logs:")
        print(f"  Airflow (dag.test of each run): {folder.dags_log}")
        print(f"  airflow db migrate:             {folder.migrate_log}")
        print(f"  emulator:                       {folder.emulator_log}")
    else:
        print("Logs: Airflow's, the migration's and the emulator's go with the folder (--keep keeps them).")
    if ok:
        print("Every DAG run succeeded: the ETL ran on a warm database.")
    else:
        print("A DAG run failed: its task logs are in the Airflow log above.")
    return ok
