"""The emulated AWS endpoint as botocore sees it: shapes, state rules, errors and faults."""

from __future__ import annotations

import http.client
import json
import urllib.request
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError
from emulator_helpers import FAST, NO_RETRY, error_of, events, wait_until

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults, Timings

pytestmark = [pytest.mark.emulator, pytest.mark.db]


def describe(rds: Any, identifier: str) -> dict[str, Any]:
    clusters: list[dict[str, Any]] = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    assert len(clusters) == 1
    return clusters[0]


def test_describe_reports_each_kind_with_its_own_fields(emu: AuroraEmulator, rds: Any) -> None:
    v2 = emu.add_cluster(ClusterSpec("v2", data_api=True, iam_auth=True, seconds_until_auto_pause=600))
    v1 = emu.add_cluster(ClusterSpec("v1", kind="serverless-v1", engine="aurora-mysql"))
    prov = emu.add_cluster(ClusterSpec("prov", kind="provisioned", state="available"))

    d2 = describe(rds, "v2")
    assert d2["Status"] == "available"  # paused, yet "available", as AWS reports it
    assert d2["EngineMode"] == "provisioned"
    assert d2["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 0.0,
        "MaxCapacity": 4.0,
        "SecondsUntilAutoPause": 600,
    }
    assert "Capacity" not in d2 and "ScalingConfigurationInfo" not in d2
    assert (d2["Endpoint"], d2["ReaderEndpoint"], d2["Port"]) == (v2.host, v2.host, v2.port)
    assert d2["HttpEndpointEnabled"] is True and d2["IAMDatabaseAuthenticationEnabled"] is True
    assert d2["DBClusterArn"] == v2.arn

    d1 = describe(rds, "v1")
    assert d1["EngineMode"] == "serverless"
    assert d1["Capacity"] == 0
    assert d1["ScalingConfigurationInfo"]["MinCapacity"] == 1
    assert d1["ScalingConfigurationInfo"]["AutoPause"] is True
    assert d1["Port"] == v1.port and d1["HttpEndpointEnabled"] is False

    dp = describe(rds, "prov")
    assert "ServerlessV2ScalingConfiguration" not in dp and "Capacity" not in dp
    assert dp["Port"] == prov.port

    instances = {i["DBInstanceIdentifier"]: i for i in rds.describe_db_instances()["DBInstances"]}
    assert instances["v2-instance-1"]["DBInstanceClass"] == "db.serverless"
    assert instances["v2-instance-1"]["Endpoint"] == {"Address": v2.host, "Port": v2.port}
    assert instances["prov-instance-1"]["Endpoint"]["Port"] == prov.port
    assert not any(i.get("DBClusterIdentifier") == "v1" for i in instances.values())


@pytest.mark.parametrize(
    "call",
    [
        lambda rds: rds.describe_db_clusters(DBClusterIdentifier="nope"),
        lambda rds: rds.modify_current_db_cluster_capacity(DBClusterIdentifier="nope", Capacity=2),
        lambda rds: rds.start_db_cluster(DBClusterIdentifier="nope"),
        lambda rds: rds.stop_db_cluster(DBClusterIdentifier="nope"),
        lambda rds: rds.delete_db_cluster(DBClusterIdentifier="nope", SkipFinalSnapshot=True),
    ],
    ids=["describe", "modify-capacity", "start", "stop", "delete"],
)
def test_unknown_cluster_is_db_cluster_not_found_404(rds: Any, call: Any) -> None:
    with pytest.raises(ClientError) as exc:
        call(rds)
    error = error_of(exc.value)
    assert (error.code, error.status) == ("DBClusterNotFoundFault", 404)


def test_modify_capacity_wakes_a_paused_v1_cluster(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("v1", kind="serverless-v1", engine="aurora-postgresql"))
    answer = rds.modify_current_db_cluster_capacity(
        DBClusterIdentifier="v1", Capacity=8, SecondsBeforeTimeout=60, TimeoutAction="RollbackCapacityChange"
    )
    assert answer["DBClusterIdentifier"] == "v1"
    assert (answer["PendingCapacity"], answer["CurrentCapacity"]) == (8, 0)
    assert (answer["SecondsBeforeTimeout"], answer["TimeoutAction"]) == (60, "RollbackCapacityChange")
    # A second request while the resume runs is refused, as AWS does.
    with pytest.raises(ClientError) as exc:
        rds.modify_current_db_cluster_capacity(DBClusterIdentifier="v1", Capacity=4)
    assert (error_of(exc.value).code, error_of(exc.value).status) == ("InvalidDBClusterStateFault", 400)
    wait_until(lambda: describe(rds, "v1").get("Capacity") == 8, 10, "Capacity 8")
    requested = events(emu, "v1", "resume-requested")[0]
    capacity_at = events(emu, "v1", "capacity-available")[0]
    assert capacity_at - requested == pytest.approx(FAST.v1_capacity_seconds, abs=1e-6)
    assert emu.timeline("v1")[-2].detail["cause"] == "modify-capacity"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"Capacity": 3}, "InvalidDBClusterCapacityFault"),  # not a PostgreSQL v1 capacity
        ({"Capacity": 1}, "InvalidDBClusterCapacityFault"),  # MySQL-only value
        ({"Capacity": 32}, "InvalidDBClusterCapacityFault"),  # valid, but above MaxCapacity 16
        ({"Capacity": 4, "SecondsBeforeTimeout": 5}, "InvalidParameterValue"),
        ({"Capacity": 4, "SecondsBeforeTimeout": 601}, "InvalidParameterValue"),
        ({"Capacity": 4, "TimeoutAction": "Wait"}, "InvalidParameterValue"),
    ],
)
def test_bad_modify_capacity_is_rejected_with_http_400(
    emu: AuroraEmulator, rds: Any, kwargs: dict[str, Any], code: str
) -> None:
    emu.add_cluster(ClusterSpec("v1", kind="serverless-v1", engine="aurora-postgresql"))
    with pytest.raises(ClientError) as exc:
        rds.modify_current_db_cluster_capacity(DBClusterIdentifier="v1", **kwargs)
    assert (error_of(exc.value).code, error_of(exc.value).status) == (code, 400)
    assert events(emu, "v1", "resume-requested") == []  # nothing was woken


@pytest.mark.parametrize("kind", ["serverless-v2", "provisioned"])
def test_modify_capacity_on_a_non_v1_cluster_is_an_invalid_state(
    emu: AuroraEmulator, rds: Any, kind: str
) -> None:
    emu.add_cluster(ClusterSpec("c", kind=kind, state="available"))
    with pytest.raises(ClientError) as exc:
        rds.modify_current_db_cluster_capacity(DBClusterIdentifier="c", Capacity=2)
    error = error_of(exc.value)
    assert (error.code, error.status) == ("InvalidDBClusterStateFault", 400)
    assert "Serverless v1" in error.message


def test_start_db_cluster_goes_through_starting_and_refuses_connections_meanwhile(
    emu: AuroraEmulator, rds: Any
) -> None:
    ep = emu.add_cluster(ClusterSpec("s", state="stopped"))
    assert describe(rds, "s")["Status"] == "stopped"
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(host=ep.host, port=ep.port, user="postgres", dbname="test", connect_timeout=5)
    answer = rds.start_db_cluster(DBClusterIdentifier="s")["DBCluster"]
    assert answer["Status"] == "starting"
    assert describe(rds, "s")["Status"] == "starting"
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(host=ep.host, port=ep.port, user="postgres", dbname="test", connect_timeout=5)
    wait_until(lambda: describe(rds, "s")["Status"] == "available", 10, "available")
    with psycopg.connect(
        host=ep.host, port=ep.port, user="postgres", dbname="test", connect_timeout=5
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    started = events(emu, "s", "start-requested")[0]
    available = events(emu, "s", "available")[0]
    assert available - started == pytest.approx(FAST.start_seconds, abs=1e-6)
    assert all(t >= available for t in emu.counters()["connections_completed_at"]["s"])


def test_stop_db_cluster_goes_through_stopping_to_stopped(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("s", state="available"))
    assert rds.stop_db_cluster(DBClusterIdentifier="s")["DBCluster"]["Status"] == "stopping"
    wait_until(lambda: describe(rds, "s")["Status"] == "stopped", 10, "stopped")
    stop_at = events(emu, "s", "stop-requested")[0]
    assert events(emu, "s", "stopped")[0] - stop_at == pytest.approx(FAST.stop_seconds, abs=1e-6)


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        ("available", "start_db_cluster", "expected it to be one of stopped"),
        ("stopped", "stop_db_cluster", "expected it to be one of available"),
    ],
)
def test_start_and_stop_from_the_wrong_state_are_invalid_state_faults(
    emu: AuroraEmulator, rds: Any, state: str, action: str, expected: str
) -> None:
    emu.add_cluster(ClusterSpec("s", state=state))
    with pytest.raises(ClientError) as exc:
        getattr(rds, action)(DBClusterIdentifier="s")
    error = error_of(exc.value)
    assert (error.code, error.status) == ("InvalidDBClusterStateFault", 400)
    assert expected in error.message


def test_delete_makes_describe_404_and_the_endpoint_refuse(emu: AuroraEmulator, rds: Any) -> None:
    ep = emu.add_cluster(ClusterSpec("gone", kind="serverless-v1", state="available"))
    rds.delete_db_cluster(DBClusterIdentifier="gone", SkipFinalSnapshot=True)
    with pytest.raises(ClientError) as exc:
        rds.describe_db_clusters(DBClusterIdentifier="gone")
    assert error_of(exc.value).code == "DBClusterNotFoundFault"
    with pytest.raises(psycopg.OperationalError, match="refused"):
        psycopg.connect(host=ep.host, port=ep.port, user="postgres", dbname="test", connect_timeout=5)
    assert events(emu, "gone", "deleted")


def test_throttling_as_botocore_sees_it_and_reproducible_by_seed(
    aurora_emulator_factory: Any,
) -> None:
    def outcomes(emulator: AuroraEmulator) -> list[str]:
        client = emulator.boto3_client("rds", config=NO_RETRY)
        seen = []
        for _ in range(30):
            try:
                client.describe_db_clusters()
                seen.append("ok")
            except ClientError as exc:
                error = error_of(exc)
                assert (error.code, error.status, error.message) == ("Throttling", 400, "Rate exceeded")
                seen.append("throttled")
        return seen

    faults = Faults(throttle_fraction=0.5, seed=7)
    first = outcomes(aurora_emulator_factory(faults=faults))
    second = outcomes(aurora_emulator_factory(faults=faults))
    assert first == second
    assert 0 < first.count("throttled") < 30


def test_throttling_can_be_limited_to_a_window(emu: AuroraEmulator, rds: Any) -> None:
    emu.set_faults(Faults(throttle_fraction=1.0, throttle_seconds=0.0))
    rds.describe_db_clusters()  # the window is already over
    emu.set_faults(Faults(throttle_fraction=1.0, throttle_seconds=600))
    with pytest.raises(ClientError) as exc:
        rds.describe_db_clusters()
    assert error_of(exc.value).code == "Throttling"


@pytest.mark.parametrize(("status", "code"), [(500, "InternalFailure"), (503, "ServiceUnavailable")])
def test_server_error_burst_hits_the_next_n_rds_calls(
    emu: AuroraEmulator, rds: Any, status: int, code: str
) -> None:
    emu.set_faults(Faults(server_errors=2, server_error_status=status))
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            rds.describe_db_clusters()
        assert (error_of(exc.value).code, error_of(exc.value).status) == (code, status)
    rds.describe_db_clusters()
    assert emu.counters()["rds_faults"] == {code: 2}


def test_deny_actions_answer_access_denied_403_naming_the_action(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("v1", kind="serverless-v1"))
    emu.set_faults(Faults(deny_actions=frozenset({"rds:ModifyCurrentDBClusterCapacity"})))
    with pytest.raises(ClientError) as exc:
        rds.modify_current_db_cluster_capacity(DBClusterIdentifier="v1", Capacity=2)
    error = error_of(exc.value)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert "rds:ModifyCurrentDBClusterCapacity" in error.message
    assert events(emu, "v1", "resume-requested") == []
    describe(rds, "v1")  # other actions still work


def test_counters_count_rds_calls_by_action_and_cluster(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("a", state="available"))
    rds.describe_db_clusters(DBClusterIdentifier="a")
    rds.describe_db_clusters(DBClusterIdentifier="a")
    rds.describe_db_clusters()
    with pytest.raises(ClientError):
        rds.start_db_cluster(DBClusterIdentifier="a")
    counters = emu.counters()
    assert counters["rds_calls"] == {"DescribeDBClusters": 3, "StartDBCluster": 1}
    assert counters["rds_calls_by_cluster"] == {"a": {"DescribeDBClusters": 2, "StartDBCluster": 1}}


def test_other_services_pass_through_to_moto(emu: AuroraEmulator) -> None:
    arn = emu.create_secret("postgres", "pw", name="db-secret")
    secrets = emu.boto3_client("secretsmanager")
    value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    assert value == {"username": "postgres", "password": "pw"}
    assert emu.boto3_client("sts").get_caller_identity()["Account"] == emu.account_id


def test_clusters_created_through_the_api_get_a_database_endpoint(emu: AuroraEmulator, rds: Any) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier="made",
        Engine="aurora-postgresql",
        MasterUsername="postgres",
        MasterUserPassword="password123",
        ServerlessV2ScalingConfiguration={"MinCapacity": 0, "MaxCapacity": 2},
    )
    rds.create_db_instance(
        DBInstanceIdentifier="made-1",
        DBClusterIdentifier="made",
        Engine="aurora-postgresql",
        DBInstanceClass="db.serverless",
    )
    ep = emu.cluster("made")
    cluster = describe(rds, "made")
    assert (cluster["Endpoint"], cluster["Port"]) == (ep.host, ep.port)
    instance = rds.describe_db_instances(DBInstanceIdentifier="made-1")["DBInstances"][0]
    assert instance["Endpoint"]["Port"] == ep.port
    with psycopg.connect(
        host=ep.host, port=ep.port, user="postgres", dbname="test", connect_timeout=5
    ) as conn:
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_two_emulators_do_not_see_each_other(aurora_emulator_factory: Any) -> None:
    one = aurora_emulator_factory([ClusterSpec("shared-name", state="available")])
    two = aurora_emulator_factory([ClusterSpec("shared-name", kind="serverless-v1")])
    only_one = aurora_emulator_factory([ClusterSpec("only-in-one", state="available")])
    d1 = describe(one.boto3_client("rds"), "shared-name")
    d2 = describe(two.boto3_client("rds"), "shared-name")
    assert d1["EngineMode"] == "provisioned" and d2["EngineMode"] == "serverless"
    assert d1["Port"] == one.cluster("shared-name").port != d2["Port"]
    with pytest.raises(ClientError) as exc:
        one.boto3_client("rds").describe_db_clusters(DBClusterIdentifier="only-in-one")
    assert error_of(exc.value).code == "DBClusterNotFoundFault"
    assert [
        c["DBClusterIdentifier"] for c in only_one.boto3_client("rds").describe_db_clusters()["DBClusters"]
    ] == ["only-in-one"]


def _admin(emu: AuroraEmulator, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(emu.endpoint_url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_admin_routes_show_state_and_change_clusters_and_faults(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("a", state="available"))
    state = _admin(emu, "GET", "/_emulator/state")
    assert state["clusters"]["a"]["phase"] == "available"
    assert state["clusters"]["a"]["timeline"][0]["event"] == "created"
    assert state["endpoint_url"] == emu.endpoint_url

    paused = _admin(emu, "POST", "/_emulator/clusters/a/pause")
    assert paused["phase"] == "paused"
    assert emu.status("a") == "paused"
    assert _admin(emu, "POST", "/_emulator/clusters/a/wake")["phase"] == "available"
    timings = _admin(emu, "POST", "/_emulator/clusters/a/timings", {"resume_seconds": 0.25})
    assert timings["timings"]["resume_seconds"] == 0.25

    faults = _admin(emu, "POST", "/_emulator/faults", {"deny_actions": ["DescribeDBClusters"]})
    assert faults["deny_actions"] == ["DescribeDBClusters"]
    with pytest.raises(ClientError) as exc:
        rds.describe_db_clusters()
    assert error_of(exc.value).code == "AccessDenied"

    created = _admin(emu, "POST", "/_emulator/clusters", {"identifier": "b", "kind": "serverless-v1"})
    assert created["port"] == emu.cluster("b").port
    assert _admin(emu, "GET", "/_emulator/counters")["rds_calls"]["DescribeDBClusters"] == 1
    assert emu.state()["clusters"]["b"]["kind"] == "serverless-v1"


def test_admin_route_errors_are_json_with_a_reason(emu: AuroraEmulator) -> None:
    with pytest.raises(urllib.error.HTTPError) as exc:
        _admin(emu, "POST", "/_emulator/faults", {"throttle_fraction": 2})
    assert exc.value.code == 400
    assert "throttle_fraction" in json.loads(exc.value.read())["error"]
    with pytest.raises(urllib.error.HTTPError) as missing:
        _admin(emu, "POST", "/_emulator/clusters/nope/pause")
    assert missing.value.code == 404


def _request_without_body(emu: AuroraEmulator, method: str, path: str, content_length: str | None) -> int:
    """Send a request with no body, without or with ``Content-Length: 0``; return the status.

    The socket timeout bounds the wait, so an endpoint that waits for a body fails the test
    with a timeout instead of hanging the suite.
    """
    host, port = emu.endpoint_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.putrequest(method, path)  # unlike request(), adds no Content-Length by itself
        if content_length is not None:
            conn.putheader("Content-Length", content_length)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize("content_length", [None, "0"], ids=["no-content-length", "content-length-0"])
def test_requests_without_a_body_are_answered_at_once(
    emu: AuroraEmulator, content_length: str | None
) -> None:
    emu.add_cluster(ClusterSpec("a", state="available"))
    for path, status, phase in [
        ("/_emulator/clusters/a/pause", 200, "paused"),  # docs: the body is optional
        ("/_emulator/clusters/a/wake", 200, "available"),
        ("/_emulator/clusters/a/timings", 200, "available"),
        ("/_emulator/clusters/a/resume-answers", 200, "available"),
        ("/_emulator/faults", 200, "available"),
        ("/_emulator/clusters", 400, "available"),  # a cluster needs at least an identifier
        ("/_emulator/clusters/a/stop", 200, "stopped"),
        ("/_emulator/clusters/a/delete", 200, "deleted"),
    ]:
        assert _request_without_body(emu, "POST", path, content_length) == status, path
        assert emu.status("a") == phase, path
    # The AWS endpoint reads bodies the same way before handing a request to moto.
    assert _request_without_body(emu, "GET", "/", content_length) >= 200


def test_a_chunked_body_is_read_to_its_last_chunk(emu: AuroraEmulator) -> None:
    emu.add_cluster(ClusterSpec("a", state="available"))
    host, port = emu.endpoint_url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        # An iterable body without a length goes out as Transfer-Encoding: chunked.
        conn.request("POST", "/_emulator/clusters/a/timings", body=iter([b'{"resume_seconds"', b": 0.25}"]))
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())["timings"]["resume_seconds"]) == (200, 0.25)
    finally:
        conn.close()
    assert emu.timings_of("a").resume_seconds == 0.25


def test_context_manager_tears_down_even_on_error() -> None:
    emulator = AuroraEmulator([ClusterSpec("t", state="available")], timings=Timings(resume_seconds=1))
    with pytest.raises(RuntimeError, match="boom"), emulator:
        url = emulator.endpoint_url
        port = emulator.cluster("t").port
        raise RuntimeError("boom")
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/_emulator/health", timeout=2)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="test", connect_timeout=2)
