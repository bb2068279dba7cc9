"""An emulated cluster with readers, and the Airflow connections that reach it (adapter tests).

Import the fixture into a test module (``from reader_clusters import with_readers``): it is
``tests/airflow_support.py``'s ``emulated`` for clusters with readers, returning the same
:class:`~airflow_support.EmulatedCluster`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from airflow_support import (
    CLUSTER,
    DB_CONN_ID,
    ENGINES,
    FAST_TIMINGS,
    SUPERUSERS,
    EmulatedCluster,
    set_aws_connection,
    set_database_connection,
)

#: A tier 2-15 reader resumes this much later than the writer, in these tests.
READER_EXTRA_SECONDS = 1.5


@pytest.fixture
def with_readers(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Callable[..., EmulatedCluster]]:
    """Factory: ``with_readers(tiers=(1, 2), engine=..., state=..., readers=None)`` starts an
    emulator with one cluster and a reader in each failover tier given (or the ``ReaderSpec``
    objects in ``readers``), and defines the AWS and database connections (empty host: the
    cluster endpoint). The emulator stops at the end of the test.
    """
    from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, ReaderSpec, Timings

    started: list[Any] = []

    def start(
        *,
        tiers: tuple[int, ...] = (1, 2),
        readers: list[Any] | None = None,
        engine: str = "postgresql",
        state: str = "paused",
        kind: str = "serverless-v2",
        conn_host: str | None = None,
        conn_port: int | None = None,
    ) -> EmulatedCluster:
        request.getfixturevalue("postgres_server" if engine == "postgresql" else "mariadb_server")
        spec = ClusterSpec(
            CLUSTER,
            kind=kind,
            engine=ENGINES[engine],
            state=state,
            readers=readers if readers is not None else [ReaderSpec(tier) for tier in tiers],
        )
        timings = Timings(**{**FAST_TIMINGS, "reader_resume_extra_seconds": READER_EXTRA_SECONDS})
        emu = AuroraEmulator([spec], timings=timings)
        emu.start()
        started.append(emu)
        aws_conn_id = set_aws_connection(monkeypatch, emu)
        set_database_connection(
            monkeypatch, DB_CONN_ID, engine=engine, user=SUPERUSERS[engine], host=conn_host, port=conn_port
        )
        return EmulatedCluster(
            emu=emu, identifier=CLUSTER, engine=engine, kind=kind, aws_conn_id=aws_conn_id, conn_id=DB_CONN_ID
        )

    yield start
    for emu in started:
        emu.shutdown()


def readers_ready_at(cluster: EmulatedCluster) -> list[float | None]:
    """When each reader of the cluster last became connectable."""
    return [
        cluster.emu.instance_ready_at(reader.identifier) for reader in cluster.emu.readers(cluster.identifier)
    ]
