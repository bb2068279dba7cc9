"""Running a pre-wake companion DAG with ``dag.test()`` for a target run a few seconds ahead.

The scheduler would have the target DAG in its database (paused or not, with its next run);
:func:`register_target` puts it there, and :func:`run_prewake` runs the companion for a target
run that starts ``starts_in`` seconds from now.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow_support import AIRFLOW_2, EXAMPLE_DAGS_FOLDER


def register_target(target: Any, folder: Path, *, paused: bool, next_dagrun: datetime) -> None:
    """Put the target DAG in Airflow's database as the scheduler would hold it.

    Airflow 3 writes the DAGs of the folder's bundle (as ``dag.test()`` does) and the scheduler's
    own next run; 2.11's ``dag.test()`` writes no DAG, so the target gets ``next_dagrun`` here.

    :param target: The target DAG.
    :param folder: The DAGs folder it comes from.
    :param paused: Whether it is paused.
    :param next_dagrun: Its next run's logical date (2.11).
    """
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    if AIRFLOW_2:
        from airflow.models.dag import DAG

        DAG.bulk_write_to_db([target])
    else:
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

        bundle = "dags-folder" if folder == EXAMPLE_DAGS_FOLDER else "test-dags"
        DagBundlesManager().sync_bundles_to_db()
        sync_bag_to_db(BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name=bundle), bundle, None)
    with create_session() as session:
        model = session.get(DagModel, target.dag_id)
        assert model is not None
        model.is_paused = paused
        if AIRFLOW_2:
            model.next_dagrun = next_dagrun


def run_prewake(
    companion: Any, target: Any, folder: Path, *, starts_in: float, target_paused: bool = False
) -> tuple[Any, float]:
    """Run a companion DAG for a target run that starts ``starts_in`` seconds from now.

    ``dag.test()`` makes a manual run: its ``run_after`` (Airflow 3) or logical date (2.11) is
    the target run's start, the companion's ``max_lead`` earlier.

    :returns: The DAG run and the scheduled start (epoch seconds).
    """
    start = datetime.fromtimestamp(time.time() + starts_in, tz=timezone.utc).replace(microsecond=0)
    run_after = start - companion.timetable.lead
    register_target(target, folder, paused=target_paused, next_dagrun=run_after)
    if AIRFLOW_2:
        import airflow.providers.fab.auth_manager.models  # noqa: F401  -- see window_support

        return companion.test(execution_date=run_after), start.timestamp()
    return companion.test(logical_date=run_after, run_after=run_after), start.timestamp()
