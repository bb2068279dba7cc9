"""The emulator's RDS call counters per access key: how a test tells its client processes apart."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import NO_RETRY

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults

pytestmark = [pytest.mark.emulator, pytest.mark.db]


def client_with_key(emu: AuroraEmulator, access_key: str, secret_key: str) -> Any:
    """An RDS client of ``emu`` that signs with its own credentials and does not retry."""
    import boto3

    return boto3.client(
        "rds",
        region_name=emu.region,
        endpoint_url=emu.endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=NO_RETRY,
    )


def test_rds_calls_are_counted_per_access_key_and_per_cluster(emu: AuroraEmulator) -> None:
    emu.add_cluster(ClusterSpec("a", state="available"))
    emu.add_cluster(ClusterSpec("b", state="available"))
    first = client_with_key(emu, "AKIDFIRSTTRIGGERER", "first-secret-key")
    second = client_with_key(emu, "AKIDSECONDTRIGGERER", "second-secret-key")

    first.describe_db_clusters(DBClusterIdentifier="a")
    first.describe_db_clusters(DBClusterIdentifier="a")
    first.describe_db_clusters(DBClusterIdentifier="b")
    first.describe_db_clusters()  # names no cluster: counted for the key, under no cluster
    second.describe_db_clusters(DBClusterIdentifier="b")
    with pytest.raises(ClientError):
        second.start_db_cluster(DBClusterIdentifier="b")  # refused calls are calls too
    emu.set_faults(Faults(deny_actions=frozenset({"rds:DescribeDBClusters"})))
    with pytest.raises(ClientError):
        second.describe_db_clusters(DBClusterIdentifier="a")  # and faulted ones

    counters = emu.counters()
    assert counters["rds_calls_by_access_key"] == {
        "AKIDFIRSTTRIGGERER": {"DescribeDBClusters": 4},
        "AKIDSECONDTRIGGERER": {"DescribeDBClusters": 2, "StartDBCluster": 1},
    }
    assert counters["rds_calls_by_access_key_and_cluster"] == {
        "AKIDFIRSTTRIGGERER": {"a": {"DescribeDBClusters": 2}, "b": {"DescribeDBClusters": 1}},
        "AKIDSECONDTRIGGERER": {
            "a": {"DescribeDBClusters": 1},
            "b": {"DescribeDBClusters": 1, "StartDBCluster": 1},
        },
    }
    # The per-key counts add up to the endpoint's own counts.
    assert counters["rds_calls"] == {"DescribeDBClusters": 6, "StartDBCluster": 1}
    # Only the access key id is kept: the secret key never reaches the endpoint.
    assert "secret-key" not in json.dumps(counters)
