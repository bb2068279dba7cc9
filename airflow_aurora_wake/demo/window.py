"""After a warm window's DAG run: wait for each cluster to pause again, then read the holds left on it.

The release gives the cluster back its own scaling (``MinCapacity`` 0 and the demo's short
``SecondsUntilAutoPause``); with no connection open, the emulated cluster pauses again after its
idle time. The demo waits for that within its ``--timeout``, printing the progress lines as
they come, then reads the cluster's tags through the RDS API as any holder would: no
``aurora-wake:hold:`` tag may remain.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_aurora_wake.core.hold.ledger import HOLD_TAG_PREFIX
from airflow_aurora_wake.demo.engines import EngineSetup
from airflow_aurora_wake.demo.progress import Progress
from airflow_aurora_wake.demo.watch import Watch
from airflow_aurora_wake.demo.window_timeline import paused_after_window

if TYPE_CHECKING:
    from airflow_aurora_wake.emulator import AuroraEmulator

#: Seconds between two looks at the emulator while waiting for a pause (it is in this process).
POLL_SECONDS = 0.25
#: Bounds of the one DescribeDBClusters call that reads the tags (the emulator is local).
_TAGS_CONNECT_TIMEOUT, _TAGS_READ_TIMEOUT = 5, 20


@dataclass(frozen=True)
class WindowEnd:
    """How one cluster's warm window ended, as the demo saw it after the DAG run.

    :param waited: The demo waited for the cluster to pause again (its DAG run succeeded).
    :param paused: It paused again within ``--timeout``.
    :param holds_left: Its ``aurora-wake:hold:`` tags at the end, key to value.
    :param checked_at: When the tags were read (epoch seconds).
    """

    waited: bool
    paused: bool
    holds_left: dict[str, str]
    checked_at: float


def wait_until_paused(
    emu: AuroraEmulator,
    clusters: Sequence[str],
    *,
    deadline: float,
    progress: Progress,
    watch: Watch,
) -> set[str]:
    """Wait until each cluster pauses again after the release restored its floor, or until ``deadline``.

    :param emu: The running emulator.
    :param clusters: The cluster identifiers.
    :param deadline: ``time.monotonic()`` value to give up at (what ``--timeout`` leaves).
    :param progress: The progress printer.
    :param watch: Prints the emulator's events as they come (``paused again after ...``).
    :returns: The clusters that paused again.
    """
    pending = list(clusters)
    paused: set[str] = set()
    while True:
        for cluster in list(pending):
            if paused_after_window(emu.timeline(cluster)) is not None:
                paused.add(cluster)
                pending.remove(cluster)
        watch.poll()
        if not pending or time.monotonic() > deadline:
            return paused
        idle = ", ".join(f"{cluster} {emu.status(cluster)}" for cluster in pending)
        progress.tick(f"waiting for the cluster to pause again after its idle time: {idle}")
        time.sleep(POLL_SECONDS)


def hold_tags(emu: AuroraEmulator, cluster: str) -> dict[str, str]:
    """The cluster's ``aurora-wake:hold:`` tags, read through the RDS API (``DescribeDBClusters``).

    :param emu: The running emulator.
    :param cluster: The cluster identifier.
    """
    from botocore.config import Config

    config = Config(
        connect_timeout=_TAGS_CONNECT_TIMEOUT, read_timeout=_TAGS_READ_TIMEOUT, retries={"max_attempts": 2}
    )
    described = emu.boto3_client("rds", config=config).describe_db_clusters(DBClusterIdentifier=cluster)
    tags = described["DBClusters"][0].get("TagList", [])
    return {tag["Key"]: tag["Value"] for tag in tags if tag["Key"].startswith(HOLD_TAG_PREFIX)}


def finish_windows(
    emu: AuroraEmulator,
    engines: Sequence[EngineSetup],
    records: list[dict[str, Any]],
    *,
    wait: bool,
    deadline: float,
    progress: Progress,
    watch: Watch,
) -> dict[str, WindowEnd]:
    """After the window DAG runs: wait for the clusters to pause again, then read their holds.

    :param emu: The running emulator.
    :param engines: The engines the demo ran.
    :param records: The runner's records, one per finished DAG run.
    :param wait: Wait for the pauses (every DAG run succeeded); otherwise only read the holds.
    :param deadline: ``time.monotonic()`` value to give up waiting at.
    :param progress: The progress printer.
    :param watch: The live lines.
    :returns: Cluster identifier to how its window ended.
    """
    ran = {record["label"] for record in records}
    waits = [engine.cluster for engine in engines if wait and engine.label in ran]
    paused: set[str] = set()
    if waits:
        progress.say(
            f"every window released: waiting for {', '.join(waits)} to pause again after the idle "
            "time (SecondsUntilAutoPause)"
        )
        paused = wait_until_paused(emu, waits, deadline=deadline, progress=progress, watch=watch)
    ends: dict[str, WindowEnd] = {}
    for engine in engines:
        holds = hold_tags(emu, engine.cluster)
        ends[engine.cluster] = WindowEnd(
            waited=engine.cluster in waits,
            paused=engine.cluster in paused,
            holds_left=holds,
            checked_at=time.time(),
        )
    return ends
