"""Running the warm-window DAGs of ``tests/dags/warm_window_dags.py`` with ``dag.test()``."""

from __future__ import annotations

from typing import Any

from airflow_support import AIRFLOW_2, TEST_DAGS_FOLDER, load_module


def load_window_dag(dag_id: str) -> Any:
    """Import ``tests/dags/warm_window_dags.py`` as a fresh module and return the DAG ``dag_id``.

    :param dag_id: ``warm_window`` or ``warm_window_stop``.
    """
    return getattr(load_module(TEST_DAGS_FOLDER / "warm_window_dags.py"), dag_id)


def run_window_dag(dag: Any, *, when: Any = None, **kwargs: Any) -> Any:
    """``dag.test()`` for the run of ``when`` (``None``: now); the same ``when`` re-runs the same run id.

    :param dag: The DAG.
    :param when: The run's logical date (Airflow 3) or execution date (2.11).
    :param kwargs: Other ``dag.test()`` arguments (``run_conf``, ``mark_success_pattern``).
    """
    if when is None:
        return dag.test(**kwargs)
    if AIRFLOW_2:
        # 2.11's dag.test() deletes the earlier run of that date; the delete cascades to
        # dag_run_note, whose foreign key names the FAB user table: its model must be loaded.
        import airflow.providers.fab.auth_manager.models  # noqa: F401

        return dag.test(execution_date=when, **kwargs)
    return dag.test(logical_date=when, run_after=when, **kwargs)
