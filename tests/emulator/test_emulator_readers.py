"""Readers in the emulator: failover tiers, their own sleep, instance endpoints, the reader endpoint.

The writer and tier 0-1 readers pause and resume together; readers in tiers 2-15 pause on their
own and resume a little later; every instance has its own endpoint in ``DescribeDBInstances``,
and the reader endpoint hands each connection to a random reader. Real PostgreSQL behind.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import psycopg
import pytest
from emulator_helpers import FAST, wait_until

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, ReaderSpec
from airflow_aurora_wake.emulator.cli import parse_cluster
from airflow_aurora_wake.emulator.instances import READER_HOST

pytestmark = [pytest.mark.emulator, pytest.mark.db]


def select_one(host: str, port: int, timeout: float = 10) -> Any:
    with psycopg.connect(
        host=host, port=port, user="postgres", dbname="test", connect_timeout=timeout
    ) as conn:
        return conn.execute("SELECT 1").fetchone()


def test_readers_are_members_with_their_own_endpoints(
    emu: AuroraEmulator, rds: Any, postgres_server: Any
) -> None:
    emu.add_cluster(ClusterSpec("sales", readers=[ReaderSpec(1), ReaderSpec(2, identifier="sales-report")]))
    emu.add_cluster(ClusterSpec("solo"))
    cluster = rds.describe_db_clusters(DBClusterIdentifier="sales")["DBClusters"][0]
    endpoint = emu.cluster("sales")
    assert (cluster["Endpoint"], cluster["ReaderEndpoint"], cluster["Port"]) == (
        endpoint.host,
        READER_HOST,
        endpoint.port,
    )
    assert endpoint.reader_host == READER_HOST
    members = {
        m["DBInstanceIdentifier"]: (m["IsClusterWriter"], m["PromotionTier"])
        for m in cluster["DBClusterMembers"]
    }
    assert members == {
        "sales-instance-1": (True, 1),
        "sales-reader-1": (False, 1),
        "sales-report": (False, 2),
    }
    listed = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": ["sales"]}])[
        "DBInstances"
    ]
    readers = {reader.identifier: reader for reader in emu.readers("sales")}
    assert {i["DBInstanceIdentifier"]: i["Endpoint"] for i in listed} == {
        "sales-instance-1": {"Address": endpoint.host, "Port": endpoint.port},
        **{name: {"Address": r.host, "Port": r.port} for name, r in readers.items()},
    }
    assert len({endpoint.port, *(r.port for r in readers.values())}) == 3
    assert {i["DBInstanceStatus"] for i in listed} == {"available"}  # paused or not, as on AWS
    assert [r.pauses_on_its_own for r in readers.values()] == [False, True]
    # A cluster without readers is as it always was: its reader endpoint is the writer's.
    solo = rds.describe_db_clusters(DBClusterIdentifier="solo")["DBClusters"][0]
    assert solo["ReaderEndpoint"] == solo["Endpoint"] == emu.cluster("solo").reader_host
    assert emu.readers("solo") == [] and "readers" not in emu.state()["clusters"]["solo"]


def test_a_tier_one_reader_pauses_and_resumes_with_the_writer(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    emu.add_cluster(ClusterSpec("sales", readers=[ReaderSpec(1)]))
    (reader,) = emu.readers("sales")
    assert emu.instance_status(reader.identifier) == emu.status("sales") == "paused"

    assert select_one(reader.host, reader.port) == (1,)

    # The connection to the reader resumed the whole group: one resume, in the cluster's timeline.
    resumes = [e for e in emu.timeline("sales") if e.event == "resume-requested"]
    assert [e.detail["cause"] for e in resumes] == ["connection"]
    assert emu.status("sales") == emu.instance_status(reader.identifier) == "available"
    assert emu.instance_ready_at(reader.identifier) == emu.ready_at("sales")
    with pytest.raises(ValueError, match="pauses and resumes with the writer"):
        emu.pause_instance(reader.identifier)


def test_a_tier_two_reader_pauses_on_its_own_and_resumes_later(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    spec = ClusterSpec(
        "sales",
        state="available",
        seconds_until_auto_pause=3600,
        readers=[ReaderSpec(2, seconds_until_auto_pause=1)],
    )
    emu.add_cluster(spec)
    (reader,) = emu.readers("sales")
    wait_until(lambda: emu.instance_status(reader.identifier) == "paused", 10, "the reader's own pause")
    assert emu.status("sales") == "available"  # the writer stays up

    assert select_one(reader.host, reader.port) == (1,)

    events = emu.instance_timeline(reader.identifier)
    names = [e.event for e in events]
    assert names[names.index("auto-paused") :][:3] == ["auto-paused", "resume-requested", "ready"]
    resume = next(e for e in events if e.event == "resume-requested")
    ready = next(e for e in events if e.event == "ready")
    assert ready.at - resume.at == pytest.approx(FAST.resume_seconds + FAST.reader_resume_extra_seconds)
    # Only the reader resumed: the cluster's own timeline has no resume.
    assert not [e for e in emu.timeline("sales") if e.event == "resume-requested"]


def test_a_paused_cluster_leaves_an_awake_tier_two_reader_up(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    emu.add_cluster(ClusterSpec("sales", readers=[ReaderSpec(2, state="available")]))
    (reader,) = emu.readers("sales")
    assert emu.status("sales") == "paused"
    assert emu.instance_status(reader.identifier) == "available"
    assert select_one(reader.host, reader.port) == (1,)
    assert emu.status("sales") == "paused"
    emu.pause_instance(reader.identifier)
    assert emu.instance_status(reader.identifier) == "paused"


def test_the_reader_endpoint_picks_a_reader_at_random(emu: AuroraEmulator, postgres_server: Any) -> None:
    emu.add_cluster(ClusterSpec("sales", state="available", readers=[ReaderSpec(1), ReaderSpec(1)]))
    endpoint = emu.cluster("sales")
    for _ in range(40):
        assert select_one(READER_HOST, endpoint.port) == (1,)
    completed = [emu.reader_state(r.identifier)["connections_completed"] for r in emu.readers("sales")]
    # Every connection went to a reader, and (40 coin flips) both got some.
    assert sum(completed) == 40
    assert min(completed) > 0


def test_a_reader_still_creating_refuses_and_the_reader_endpoint_goes_to_the_writer(
    emu: AuroraEmulator, rds: Any, postgres_server: Any
) -> None:
    emu.add_cluster(ClusterSpec("sales", state="available", readers=[ReaderSpec(2, creating_seconds=600)]))
    (reader,) = emu.readers("sales")
    listed = rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": ["sales"]}])[
        "DBInstances"
    ]
    assert {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in listed} == {
        "sales-instance-1": "available",
        reader.identifier: "creating",
    }
    assert rds.describe_db_clusters(DBClusterIdentifier="sales")["DBClusters"][0]["Status"] == "available"
    with pytest.raises(psycopg.OperationalError):
        select_one(reader.host, reader.port, timeout=3)
    before = emu.counters()["connections_completed"]["sales"]
    assert select_one(READER_HOST, emu.cluster("sales").port) == (1,)
    assert emu.counters()["connections_completed"]["sales"] == before + 1  # the writer took it
    assert emu.reader_state(reader.identifier)["connections_completed"] == 0


def test_a_reader_whose_creation_ends_serves(emu: AuroraEmulator, rds: Any, postgres_server: Any) -> None:
    emu.add_cluster(ClusterSpec("sales", state="available", readers=[ReaderSpec(1, creating_seconds=1)]))
    (reader,) = emu.readers("sales")
    state = emu.reader_state(reader.identifier)
    assert state["phase"] == "creating"

    def listed_available() -> bool:
        instance = rds.describe_db_instances(DBInstanceIdentifier=reader.identifier)["DBInstances"][0]
        return bool(instance["DBInstanceStatus"] == "available")

    wait_until(listed_available, 10, "the reader's creation to end")
    # Available in DescribeDBInstances means connectable at once (no race with the listener).
    assert select_one(reader.host, reader.port) == (1,)
    ready_at = emu.instance_ready_at(reader.identifier)
    assert ready_at is not None


def test_stopping_the_cluster_stops_its_readers_and_a_start_wakes_them(
    emu: AuroraEmulator, rds: Any, postgres_server: Any
) -> None:
    emu.add_cluster(ClusterSpec("sales", state="available", readers=[ReaderSpec(2, state="paused")]))
    (reader,) = emu.readers("sales")
    emu.stop_cluster("sales")
    assert emu.instance_status(reader.identifier) == "stopped"
    listed = rds.describe_db_instances(DBInstanceIdentifier=reader.identifier)["DBInstances"][0]
    assert listed["DBInstanceStatus"] == "stopped"
    with pytest.raises(psycopg.OperationalError):
        select_one(reader.host, reader.port, timeout=3)
    rds.start_db_cluster(DBClusterIdentifier="sales")
    wait_until(lambda: emu.status("sales") == "available", 10, "the start")
    # Every instance of a started cluster comes up, the reader that slept too.
    assert emu.instance_status(reader.identifier) == "available"
    assert select_one(reader.host, reader.port) == (1,)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (dict(kind="serverless-v1", readers=[ReaderSpec(1)]), "no DB instances, so no readers"),
        (dict(readers=[ReaderSpec(1, state="paused")]), "pauses and resumes with the writer"),
        (dict(kind="provisioned", state="available", readers=[ReaderSpec(2, state="paused")]), "never pause"),
        (
            dict(state="available", min_capacity=1, readers=[ReaderSpec(2, state="paused")]),
            "minimum capacity",
        ),
        (dict(readers=[ReaderSpec(1, identifier="x"), ReaderSpec(2, identifier="x")]), "two DB instances"),
        (dict(readers=[{"promotion_tier": 16}]), "promotion_tier must be a whole number from 0 to 15"),
        (dict(readers=[{"tier": 2}]), "unknown ReaderSpec field"),
    ],
)
def test_readers_a_cluster_cannot_have_are_refused(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClusterSpec("sales", **spec)


def test_the_command_line_and_the_admin_route_configure_readers(
    emu: AuroraEmulator, postgres_server: Any
) -> None:
    assert parse_cluster("sales:v2,readers=1/2")["readers"] == [{"promotion_tier": 1}, {"promotion_tier": 2}]
    created = _admin(
        emu, "POST", "/_emulator/clusters", {"identifier": "sales", "readers": [{"promotion_tier": 2}]}
    )
    assert created["reader_host"] == READER_HOST
    state = _admin(emu, "GET", "/_emulator/instances/sales-reader-1")
    assert (state["promotion_tier"], state["pauses_on_its_own"], state["phase"]) == (2, True, "paused")
    assert _admin(emu, "POST", "/_emulator/instances/sales-reader-1/wake")["phase"] == "available"
    assert _admin(emu, "POST", "/_emulator/instances/sales-reader-1/pause")["phase"] == "paused"
    assert [
        r["identifier"] for r in _admin(emu, "GET", "/_emulator/state")["clusters"]["sales"]["readers"]
    ] == ["sales-reader-1"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        _admin(emu, "GET", "/_emulator/instances/nope")
    assert missing.value.code == 404


def _admin(emu: AuroraEmulator, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emu.endpoint_url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
