"""What a wait on the reader endpoint or on every instance decides, without AWS (pure parts).

``DescribeDBInstances`` read into snapshots, the ``instances`` validation, the one decision with
the instances' statuses in it, and the one target builder with an endpoint as host override.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cluster_snapshots import v2_snapshot

from airflow_aurora_wake.core.cluster import ClusterKind
from airflow_aurora_wake.core.errors import ClusterDescriptionError, ClusterStateError, InvalidParameterError
from airflow_aurora_wake.core.instances import (
    InstanceSnapshot,
    InstanceState,
    classify_instances,
    instance_state,
)
from airflow_aurora_wake.core.targets import LoginSettings, build_target
from airflow_aurora_wake.core.validation import validate_instances
from airflow_aurora_wake.core.wait import Next, Observation, WaitRequest, decide

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"


def _instance(identifier: str, status: str = "available", port: int = 5432) -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": identifier,
        "DBInstanceStatus": status,
        "Endpoint": {"Address": f"{identifier}.example", "Port": port},
        "PromotionTier": 2,
    }


def test_describe_db_instances_answer_is_read_in_identifier_order() -> None:
    creating = _instance("sales-reader-2", "Creating")
    del creating["Endpoint"]  # RDS gives a creating instance no endpoint yet
    instances = classify_instances({"DBInstances": [creating, _instance("sales-instance-1", port=6000)]})
    assert instances == (
        InstanceSnapshot("sales-instance-1", "available", "sales-instance-1.example", 6000, 2),
        InstanceSnapshot("sales-reader-2", "creating", None, None, 2),
    )
    assert [instance.state for instance in instances] == [InstanceState.SERVING, InstanceState.WAITING]


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"DBInstances": "sales"},
        {"DBInstances": ["sales"]},
        {"DBInstances": [{"DBInstanceStatus": "available"}]},
        {"DBInstances": [{**_instance("a"), "Endpoint": "a.example"}]},
        {"DBInstances": [{**_instance("a"), "Endpoint": {"Address": "a", "Port": 70000}}]},
        {"DBInstances": [{**_instance("a"), "PromotionTier": 16}]},
    ],
)
def test_a_malformed_answer_is_a_clear_error(answer: dict[str, Any]) -> None:
    with pytest.raises(ClusterDescriptionError, match="DescribeDBInstances"):
        classify_instances(answer)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("available", InstanceState.SERVING),
        ("backing-up", InstanceState.SERVING),
        ("creating", InstanceState.WAITING),
        ("modifying", InstanceState.WAITING),
        ("rebooting", InstanceState.WAITING),
        ("something-new", InstanceState.WAITING),
        ("incompatible-parameters", InstanceState.FAILED),
        ("failed", InstanceState.FAILED),
    ],
)
def test_instance_statuses(status: str, state: InstanceState) -> None:
    assert instance_state(status) is state


@pytest.mark.parametrize("value", ["writer", "reader", "all"])
def test_instances_choices(value: str) -> None:
    assert validate_instances(value) == value


@pytest.mark.parametrize("value", ["readers", "Writer", "", None, 1, ["reader"]])
def test_an_unknown_choice_names_the_parameter_the_value_and_the_choices(value: object) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        validate_instances(value)
    message = str(caught.value)
    assert message.startswith(f"invalid instances={value!r}")
    assert "'writer'" in message and "'reader'" in message and "'all'" in message


@pytest.mark.parametrize("instances", ["reader", "all"])
def test_the_data_api_reaches_only_the_writer(instances: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        WaitRequest("sales", "us-east-1", probe="data-api", data_api_secret_arn=SECRET, instances=instances)
    message = str(caught.value)
    assert f"invalid instances={instances!r}" in message
    assert "probe='data-api' reaches only the writer" in message
    # The writer is what the Data API reaches: that request is valid.
    WaitRequest("sales", "us-east-1", probe="data-api", data_api_secret_arn=SECRET, instances="writer")


MEMBERS = (
    InstanceSnapshot("sales-instance-1", "available", "w.example", 5432, 1),
    InstanceSnapshot("sales-reader-1", "available", "r.example", 5432, 2),
)


def _all(**changes: Any) -> Observation:
    return dataclasses.replace(Observation(v2_snapshot(), instances="all", members=MEMBERS), **changes)


def test_all_instances_answered_is_ready() -> None:
    seen = _all(database_answered=True, answered_members=frozenset(m.identifier for m in MEMBERS))
    assert decide(seen).next is Next.READY


def test_an_instance_that_did_not_answer_keeps_the_wait_going() -> None:
    decision = decide(_all(database_answered=True, answered_members=frozenset({"sales-instance-1"})))
    assert decision.next is Next.DESCRIBE
    assert decision.waiting_for == ("sales-reader-1 (its endpoint has not answered yet)",)


def test_an_instance_still_creating_is_not_ready_though_the_cluster_says_available() -> None:
    members = (MEMBERS[0], InstanceSnapshot("sales-reader-1", "creating", None, None, 2))
    probing = decide(_all(members=members))
    assert probing.next is Next.PROBE  # the serving ones are probed (and woken) meanwhile
    answered = decide(
        _all(members=members, database_answered=True, answered_members=frozenset({"sales-instance-1"}))
    )
    assert answered.next is Next.DESCRIBE
    assert answered.waiting_for == probing.waiting_for == ("sales-reader-1 (creating)",)
    # One state for both: a reader created for minutes is told once, not once per probe.
    assert answered.state == probing.state


@pytest.mark.parametrize("members", [None, ()])
def test_no_instance_listed_is_not_ready(members: tuple[InstanceSnapshot, ...] | None) -> None:
    decision = decide(_all(members=members, database_answered=True))
    assert decision.next is Next.DESCRIBE
    assert decision.waiting_for


def test_an_instance_waiting_cannot_repair_fails_the_wait_naming_it() -> None:
    members = (MEMBERS[0], InstanceSnapshot("sales-reader-1", "incompatible-parameters", None, None, 2))
    decision = decide(_all(members=members))
    assert decision.next is Next.FAIL
    assert isinstance(decision.error, ClusterStateError)
    assert "'sales-reader-1' is 'incompatible-parameters'" in str(decision.error)


@pytest.mark.parametrize("instances", ["reader", "all"])
def test_a_serverless_v1_cluster_has_no_readers_to_wait_for(instances: str) -> None:
    v1 = dataclasses.replace(v2_snapshot(), kind=ClusterKind.SERVERLESS_V1, capacity=2.0)
    decision = decide(Observation(v1, instances=instances, members=()))
    assert decision.next is Next.FAIL
    assert "instances='writer'" in str(decision.error)


def test_the_writer_ignores_the_instances() -> None:
    creating = (InstanceSnapshot("sales-reader-1", "creating", None, None, 2),)
    assert decide(Observation(v2_snapshot(), database_answered=True, members=creating)).next is Next.READY


SETTINGS = LoginSettings(
    engine="postgresql", host="sales.custom-name.example", port=None, user="etl", password="pw", database="db"
)


async def test_an_endpoint_replaces_the_host_and_keeps_the_login() -> None:
    snapshot = dataclasses.replace(v2_snapshot(port=15432), reader_endpoint="sales.cluster-ro.example")
    reader = build_target(SETTINGS, snapshot, sign_token=None, host="sales.cluster-ro.example")
    assert (reader.host, reader.port, reader.user, reader.password, reader.database) == (
        "sales.cluster-ro.example",
        15432,  # the cluster's port goes with the cluster's endpoints
        "etl",
        "pw",
        "db",
    )
    instance = build_target(SETTINGS, snapshot, sign_token=None, host="sales-r1.example", port=6432)
    assert (instance.host, instance.port) == ("sales-r1.example", 6432)
    # Without an override, the explicit host and the engine's default port, as before.
    writer = build_target(SETTINGS, snapshot, sign_token=None)
    assert (writer.host, writer.port) == ("sales.custom-name.example", 5432)


async def test_an_iam_token_is_signed_for_the_host_connected_to() -> None:
    signed: list[tuple[str, int, str]] = []

    async def sign(host: str, port: int, user: str) -> str:
        signed.append((host, port, user))
        return "token"

    settings = dataclasses.replace(SETTINGS, password=None, iam=True)
    target = build_target(settings, v2_snapshot(), sign_token=sign, host="sales-r1.example", port=6432)
    assert await target.resolve_password() == "token"
    assert signed == [("sales-r1.example", 6432, "etl")]
