"""Recording resumes in the cluster's history tag, against the emulator's RDS (moto's model).

Each test reads the tag back through ``DescribeDBClusters``, as the next pre-wake would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from airflow_aurora_wake.core.cluster import ClusterSnapshot
from airflow_aurora_wake.core.errors import AwsPermissionError, ClusterDescriptionError, InvalidParameterError
from airflow_aurora_wake.core.prewake import HISTORY_TAG, WakeKind, parse_history, record_resume
from airflow_aurora_wake.core.rds import RdsCalls, describe_cluster
from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults
from airflow_aurora_wake.emulator.pytest_plugin import aurora_emulator_factory  # noqa: F401

pytestmark = [pytest.mark.emulator]

V2 = WakeKind.V2_RESUME


@pytest.fixture
def emu(aurora_emulator_factory: Callable[..., AuroraEmulator]) -> AuroraEmulator:  # noqa: F811
    emulator = aurora_emulator_factory([ClusterSpec("sales", state="available")])
    arn = described(emulator)["DBClusterArn"]
    emulator.boto3_client("rds").add_tags_to_resource(
        ResourceName=arn, Tags=[{"Key": "team", "Value": "data"}]
    )
    return emulator


@pytest.fixture
async def rds(emu: AuroraEmulator) -> AsyncIterator[Any]:
    """An aiobotocore client that does not retry by itself: the retries seen are the core's."""
    async with get_session().create_client(
        "rds",
        region_name=emu.region,
        endpoint_url=emu.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=AioConfig(retries={"total_max_attempts": 1, "mode": "standard"}),
    ) as client:
        yield client


def described(emu: AuroraEmulator) -> dict[str, Any]:
    return emu.boto3_client("rds").describe_db_clusters(DBClusterIdentifier="sales")["DBClusters"][0]


def tags_on_cluster(emu: AuroraEmulator) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in described(emu).get("TagList", [])}


async def snapshot(rds: Any) -> ClusterSnapshot:
    return await describe_cluster(rds, "sales", timeout=20)


async def test_each_resume_lands_in_the_tag_and_the_next_describe_reads_it_back(
    emu: AuroraEmulator, rds: Any
) -> None:
    calls = RdsCalls()
    first = await record_resume(rds, await snapshot(rds), V2, 14.84, timeout=30, calls=calls)
    second = await record_resume(rds, await snapshot(rds), WakeKind.START, 312, timeout=30, calls=calls)

    assert (first, second) == ("v2-resume:14.8", "v2-resume:14.8 start:312.0")
    assert tags_on_cluster(emu) == {"team": "data", HISTORY_TAG: second}
    assert parse_history((await snapshot(rds)).tags) == [(V2, 14.8), (WakeKind.START, 312.0)]
    assert calls.as_dict() == {"AddTagsToResource": 2}


async def test_writers_from_the_same_describe_lose_a_sample_and_the_last_one_wins(
    emu: AuroraEmulator, rds: Any
) -> None:
    seen = await snapshot(rds)
    await record_resume(rds, seen, V2, 20, timeout=30)
    await record_resume(rds, seen, V2, 30, timeout=30)
    assert parse_history(tags_on_cluster(emu)) == [(V2, 30.0)]


async def test_throttling_or_a_5xx_is_retried_within_the_timeout(emu: AuroraEmulator, rds: Any) -> None:
    seen = await snapshot(rds)
    emu.set_faults(Faults(server_errors=1, server_error_status=503))
    calls = RdsCalls()
    assert await record_resume(rds, seen, V2, 15, timeout=30, calls=calls) == "v2-resume:15.0"
    assert calls.as_dict() == {"AddTagsToResource": 2}
    assert emu.counters()["rds_faults"] == {"ServiceUnavailable": 1}
    assert tags_on_cluster(emu)[HISTORY_TAG] == "v2-resume:15.0"


async def test_a_denied_tag_write_names_the_iam_action(emu: AuroraEmulator, rds: Any) -> None:
    seen = await snapshot(rds)
    emu.set_faults(Faults(deny_actions=frozenset({"rds:AddTagsToResource"})))
    with pytest.raises(AwsPermissionError) as caught:
        await record_resume(rds, seen, V2, 15, timeout=30)
    assert caught.value.action == "rds:AddTagsToResource"
    assert "grant rds:AddTagsToResource" in str(caught.value)
    assert HISTORY_TAG not in tags_on_cluster(emu)


async def test_a_snapshot_without_an_arn_is_refused_before_any_call(rds: Any) -> None:
    seen = replace(await snapshot(rds), arn=None)
    calls = RdsCalls()
    with pytest.raises(ClusterDescriptionError, match="no DBClusterArn for DB cluster 'sales'"):
        await record_resume(rds, seen, V2, 15, timeout=30, calls=calls)
    assert calls.total == 0


@pytest.mark.parametrize("timeout", [0, -1, float("nan")])
async def test_a_timeout_that_is_not_positive_is_refused(rds: Any, timeout: float) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        await record_resume(rds, await snapshot(rds), V2, 15, timeout=timeout)
    assert caught.value.parameter == "timeout"
