"""``DescribeDBLogFiles`` on the emulated AWS endpoint: the read-only call that wakes a v2 instance.

botocore's model: the call answers ``DBInstanceNotReadyFault`` (wire code ``DBInstanceNotReady``,
HTTP 400) while a Serverless v2 instance is paused; the AWS user guide lists describing log files
among the calls that resume a paused instance. The emulator answers the fault while the writer is
paused (starting its resume, cause ``log-files``) and while it resumes, and moto's list of log
files once it is available.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import FAST, error_of

from airflow_aurora_wake.emulator import AuroraEmulator, ClusterSpec, Faults

pytestmark = [pytest.mark.emulator, pytest.mark.db]


def resume_causes(emu: AuroraEmulator, identifier: str) -> list[str]:
    return [e.detail["cause"] for e in emu.timeline(identifier) if e.event == "resume-requested"]


def test_a_paused_writer_answers_not_ready_and_resumes(emu: AuroraEmulator, rds: Any) -> None:
    # A resume far longer than the test, so the second call surely meets it under way.
    slow = dataclasses.replace(FAST, resume_seconds=600.0)
    emu.add_cluster(ClusterSpec("sales", state="paused", timings=slow))

    # botocore maps the wire code to the modelled exception class: the shape is AWS's.
    with pytest.raises(rds.exceptions.DBInstanceNotReadyFault) as paused:
        rds.describe_db_log_files(DBInstanceIdentifier="sales-instance-1")
    error = error_of(paused.value)
    assert (error.code, error.status) == ("DBInstanceNotReady", 400)
    assert resume_causes(emu, "sales") == ["log-files"]

    # While it resumes: the same answer, and the resume is not restarted.
    with pytest.raises(rds.exceptions.DBInstanceNotReadyFault):
        rds.describe_db_log_files(DBInstanceIdentifier="sales-instance-1")
    assert resume_causes(emu, "sales") == ["log-files"]

    emu.wake("sales")  # the resume ends
    files = rds.describe_db_log_files(DBInstanceIdentifier="sales-instance-1")["DescribeDBLogFiles"]
    assert files and all("LogFileName" in item for item in files)
    assert resume_causes(emu, "sales") == ["log-files"]


@pytest.mark.parametrize(
    "spec",
    [ClusterSpec("sales", state="available"), ClusterSpec("sales", kind="provisioned", state="available")],
    ids=["awake-v2", "provisioned"],
)
def test_an_awake_instance_lists_its_log_files_without_a_resume(
    emu: AuroraEmulator, rds: Any, spec: ClusterSpec
) -> None:
    emu.add_cluster(spec)
    files = rds.describe_db_log_files(DBInstanceIdentifier="sales-instance-1")["DescribeDBLogFiles"]
    assert files
    assert resume_causes(emu, "sales") == []


def test_log_file_calls_are_counted_for_the_instances_cluster(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("sales", state="paused"))
    emu.add_cluster(ClusterSpec("other", state="available"))
    with pytest.raises(ClientError):
        rds.describe_db_log_files(DBInstanceIdentifier="sales-instance-1")
    rds.describe_db_log_files(DBInstanceIdentifier="other-instance-1")
    counters = emu.counters()
    assert counters["rds_calls"]["DescribeDBLogFiles"] == 2
    assert counters["rds_calls_by_cluster"]["sales"] == {"DescribeDBLogFiles": 1}
    assert counters["rds_calls_by_cluster"]["other"] == {"DescribeDBLogFiles": 1}


def test_a_denied_log_file_call_answers_access_denied_and_wakes_nothing(
    emu: AuroraEmulator, rds: Any
) -> None:
    emu.add_cluster(ClusterSpec("sales", state="paused"))
    emu.set_faults(Faults(deny_actions=frozenset({"rds:DescribeDBLogFiles"})))
    with pytest.raises(ClientError) as denied:
        rds.describe_db_log_files(DBInstanceIdentifier="sales-instance-1")
    error = error_of(denied.value)
    assert (error.code, error.status) == ("AccessDenied", 403)
    assert "rds:DescribeDBLogFiles" in error.message
    assert resume_causes(emu, "sales") == []


def test_an_unknown_instance_is_moto_s_not_found(emu: AuroraEmulator, rds: Any) -> None:
    emu.add_cluster(ClusterSpec("sales", state="paused"))
    with pytest.raises(ClientError) as missing:
        rds.describe_db_log_files(DBInstanceIdentifier="nope-instance-1")
    assert error_of(missing.value).code == "DBInstanceNotFound"
    assert resume_causes(emu, "sales") == []
