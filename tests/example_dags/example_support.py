"""Helpers for running the example DAGs whole with ``dag.test()`` against the emulator.

``dag.test()`` runs a deferred sensor's trigger inline (Airflow 3.3 and 2.11), so one call is
wake, a real deferral, the trigger, the resume and the SQL steps, in one process. It does not
enforce the deferral timeout: every test using it has an outer ``pytest.mark.timeout``.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow_support import EXAMPLE_DAGS_FOLDER, SUPERUSERS, load_dag, set_connection

CONN_TYPES = {"postgresql": "postgres", "mysql": "mysql"}


def load_example_dag(name: str) -> Any:
    """Import ``example_dags/<name>.py`` as a fresh module and return its ``dag``.

    :param name: The file name without ``.py`` (also the DAG id).
    """
    return load_dag(EXAMPLE_DAGS_FOLDER / f"{name}.py")


def set_cluster_database_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, cluster: Any, *, engine: str
) -> None:
    """Define a ``postgres``/``mysql`` connection to the emulated cluster's writer endpoint.

    The SQL steps of the example DAGs connect with the connection as it is, so (unlike the
    sensor) they need the endpoint's host and port in it, as on AWS.

    :param monkeypatch: The test's monkeypatch.
    :param conn_id: The connection id to define.
    :param cluster: The :class:`airflow_support.EmulatedCluster`.
    :param engine: ``postgresql`` or ``mysql``.
    """
    endpoint = cluster.emu.cluster(cluster.identifier)
    set_connection(
        monkeypatch,
        conn_id,
        conn_type=CONN_TYPES[engine],
        host=endpoint.host,
        port=endpoint.port,
        login=SUPERUSERS[engine],
        schema="test",
    )
