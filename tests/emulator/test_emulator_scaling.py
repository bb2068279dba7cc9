"""What a warm window does to an emulated cluster, through the RDS API as botocore sends it.

``ModifyDBCluster`` scaling changes (the floor in the describe and the timeline, the resume they
cause, the auto-pause that follows the minimum), tags through every state change, stop and start
with a raised floor, the refusals AWS gives, and the per-cluster counters. Waits poll the
emulator's own state (bounded); the times asserted are the model's, which are exact.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import error_of, events, wait_until

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec

pytestmark = pytest.mark.emulator

#: Bound of every wait on the emulator's state (its transitions take about a second).
WAIT = 30.0


def describe(rds: Any, identifier: str) -> dict[str, Any]:
    clusters: list[dict[str, Any]] = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    return clusters[0]


def scale(rds: Any, identifier: str, **scaling: float) -> dict[str, Any]:
    answer: dict[str, Any] = rds.modify_db_cluster(
        DBClusterIdentifier=identifier, ServerlessV2ScalingConfiguration=scaling, ApplyImmediately=True
    )
    return answer["DBCluster"]


def wait_for(emu: AuroraEmulator, identifier: str, phase: str) -> None:
    wait_until(lambda: emu.status(identifier) == phase, WAIT, f"{identifier} {phase}")


def next_transition_at(emu: AuroraEmulator, identifier: str) -> float | None:
    value: float | None = emu.state()["clusters"][identifier]["next_transition_at"]
    return value


def tags(rds: Any, arn: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in rds.list_tags_for_resource(ResourceName=arn)["TagList"]}


def test_a_window_resumes_by_scaling_holds_the_floor_and_pauses_again_once_given_back(
    emu: AuroraEmulator, rds: Any
) -> None:
    emu.add_cluster(ClusterSpec("etl", seconds_until_auto_pause=1))

    raised = scale(rds, "etl", MinCapacity=2, MaxCapacity=8)

    # The floor is what the answer and every describe show; SecondsUntilAutoPause only with a 0 minimum.
    assert raised["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 2.0, "MaxCapacity": 8.0}
    assert describe(rds, "etl")["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 2.0,
        "MaxCapacity": 8.0,
    }
    wait_for(emu, "etl", "available")
    # Awake and idle, yet nothing is due: a minimum above 0 never auto-pauses.
    assert next_transition_at(emu, "etl") is None

    given_back = scale(rds, "etl", MinCapacity=0, MaxCapacity=4, SecondsUntilAutoPause=1)
    assert given_back["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 0.0,
        "MaxCapacity": 4.0,
        "SecondsUntilAutoPause": 1,
    }
    wait_for(emu, "etl", "paused")

    timeline = [event for event in emu.timeline("etl") if event.event != "created"]
    assert [event.event for event in timeline] == [
        "paused",
        "scaling-changed",
        "resume-requested",
        "ready",
        "scaling-changed",
        "auto-paused",
    ]
    _, raise_event, resume, _, release, pause = timeline
    assert raise_event.detail == {
        "cause": "modify-db-cluster",
        "before": {"min_capacity": 0.0, "max_capacity": 4.0, "seconds_until_auto_pause": 1},
        "after": {"min_capacity": 2.0, "max_capacity": 8.0, "seconds_until_auto_pause": 1},
    }
    assert (resume.at, resume.detail["cause"]) == (raise_event.at, "modify-db-cluster")
    assert release.detail["after"] == {
        "min_capacity": 0.0,
        "max_capacity": 4.0,
        "seconds_until_auto_pause": 1,
    }
    # The idle clock starts when the minimum returns to 0, not at the last connection or ready time.
    assert pause.at == release.at + 1


def test_a_paused_cluster_resumes_when_its_maximum_alone_changes(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("wide"))
    scale(rds, "wide", MaxCapacity=16)
    resumes = [event for event in emu.timeline("wide") if event.event == "resume-requested"]
    assert [event.detail["cause"] for event in resumes] == ["modify-db-cluster"]
    assert describe(rds, "wide")["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 0.0,
        "MaxCapacity": 16.0,
        "SecondsUntilAutoPause": 300,
    }


def test_the_idle_time_alone_or_the_same_range_again_does_not_wake_a_paused_cluster(
    emu: AuroraEmulator, rds: Any
) -> None:
    emu.add_cluster(ClusterSpec("calm"))
    scale(rds, "calm", MinCapacity=0, MaxCapacity=4)
    assert events(emu, "calm", "scaling-changed") == []
    scale(rds, "calm", SecondsUntilAutoPause=900)
    assert len(events(emu, "calm", "scaling-changed")) == 1
    assert emu.status("calm") == "paused"
    assert describe(rds, "calm")["ServerlessV2ScalingConfiguration"]["SecondsUntilAutoPause"] == 900


def test_tags_survive_pause_resume_stop_and_start(emu: AuroraEmulator, rds: Any) -> None:
    arn = describe(rds, emu.add_cluster(ClusterSpec("tagged")).identifier)["DBClusterArn"]
    assert arn == emu.cluster("tagged").arn
    rds.add_tags_to_resource(
        ResourceName=arn,
        Tags=[{"Key": "aurora-wake:hold:run-1", "Value": "min=2"}, {"Key": "team", "Value": "etl"}],
    )
    expected = {"aurora-wake:hold:run-1": "min=2", "team": "etl"}

    def seen() -> dict[str, str]:
        listed = tags(rds, arn)
        assert {tag["Key"]: tag["Value"] for tag in describe(rds, "tagged")["TagList"]} == listed
        return listed

    scale(rds, "tagged", MinCapacity=2)  # resumes it
    assert seen() == expected
    wait_for(emu, "tagged", "available")
    scale(rds, "tagged", MinCapacity=0)
    emu.pause("tagged")
    assert seen() == expected
    rds.stop_db_cluster(DBClusterIdentifier="tagged")
    wait_for(emu, "tagged", "stopped")
    assert seen() == expected
    rds.remove_tags_from_resource(ResourceName=arn, TagKeys=["team"])  # a stopped cluster takes tags
    rds.start_db_cluster(DBClusterIdentifier="tagged")
    wait_for(emu, "tagged", "available")
    assert seen() == {"aurora-wake:hold:run-1": "min=2"}


def test_stop_and_start_keep_a_raised_floor(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("held", state="available"))
    scale(rds, "held", MinCapacity=2, MaxCapacity=8)
    rds.stop_db_cluster(DBClusterIdentifier="held")
    wait_for(emu, "held", "stopped")
    assert describe(rds, "held")["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 2.0,
        "MaxCapacity": 8.0,
    }

    with pytest.raises(ClientError) as refused:
        scale(rds, "held", MinCapacity=0, MaxCapacity=4)
    assert error_of(refused.value).code == "InvalidDBClusterStateFault"
    assert "stopped" in error_of(refused.value).message

    rds.start_db_cluster(DBClusterIdentifier="held")
    wait_for(emu, "held", "available")
    assert describe(rds, "held")["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": 2.0,
        "MaxCapacity": 8.0,
    }
    assert next_transition_at(emu, "held") is None  # still held: no auto-pause after the start
    assert len(events(emu, "held", "scaling-changed")) == 1


@pytest.mark.parametrize(
    ("identifier", "scaling", "code"),
    [
        ("v2", {"MinCapacity": 8, "MaxCapacity": 4}, "InvalidParameterValue"),
        ("v2", {"MinCapacity": 8}, "InvalidParameterValue"),  # above the maximum it keeps
        ("v2", {"MinCapacity": 2.25, "MaxCapacity": 4}, "InvalidParameterValue"),
        ("v2", {"MinCapacity": 0, "MaxCapacity": 512}, "InvalidParameterValue"),
        ("v1", {"MinCapacity": 2, "MaxCapacity": 4}, "InvalidParameterCombination"),
    ],
)
def test_a_scaling_aws_refuses_changes_nothing(
    emu: AuroraEmulator, rds: Any, identifier: str, scaling: dict[str, float], code: str
) -> None:
    emu.add_cluster(ClusterSpec("v2"))
    emu.add_cluster(ClusterSpec("v1", kind="serverless-v1", engine="aurora-mysql"))
    before = describe(rds, identifier)
    with pytest.raises(ClientError) as refused:
        scale(rds, identifier, **scaling)
    assert (error_of(refused.value).code, error_of(refused.value).status) == (code, 400)
    after = describe(rds, identifier)
    for key in ("ServerlessV2ScalingConfiguration", "ScalingConfigurationInfo"):
        assert after.get(key) == before.get(key)
    assert emu.status(identifier) == "paused"
    assert events(emu, identifier, "scaling-changed") == []


def test_modifying_an_unknown_cluster_is_not_found(emu: AuroraEmulator, rds: Any) -> None:
    with pytest.raises(ClientError) as refused:
        scale(rds, "missing", MinCapacity=2, MaxCapacity=4)
    assert (error_of(refused.value).code, error_of(refused.value).status) == ("DBClusterNotFoundFault", 404)


def test_a_provisioned_cluster_keeps_its_own_capacity(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("prov", kind="provisioned", state="available"))
    scale(rds, "prov", MinCapacity=2, MaxCapacity=8)
    assert "ServerlessV2ScalingConfiguration" not in describe(rds, "prov")
    assert events(emu, "prov", "scaling-changed") == []


def test_scaling_and_tagging_calls_are_counted_per_cluster(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("counted", state="available"))
    arn = emu.cluster("counted").arn
    scale(rds, "counted", MinCapacity=2)
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "k", "Value": "v"}])
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "k", "Value": "w"}])
    rds.list_tags_for_resource(ResourceName=arn)
    rds.remove_tags_from_resource(ResourceName=arn, TagKeys=["k"])
    # The writer instance's ARN names an instance, not the cluster.
    instance_arn = rds.describe_db_instances()["DBInstances"][0]["DBInstanceArn"]
    rds.list_tags_for_resource(ResourceName=instance_arn)

    counters = emu.counters()
    assert counters["rds_calls_by_cluster"]["counted"] == {
        "ModifyDBCluster": 1,
        "AddTagsToResource": 2,
        "ListTagsForResource": 1,
        "RemoveTagsFromResource": 1,
    }
    assert counters["rds_calls"]["ListTagsForResource"] == 2
