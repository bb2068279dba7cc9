"""The benchmark harness (bench/run.py) runs end to end at a tiny size and writes well-formed results.

This checks the harness, not the figures: no thresholds. It needs the local PostgreSQL server
(the emulated clusters front it) and takes well under a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_harness_produces_well_formed_results(tmp_path: Path, postgres_server: object) -> None:
    # postgres_server (tests/conftest.py) fails under CI when PostgreSQL is down: the emulated
    # clusters front it.
    json_path, markdown_path = tmp_path / "b.json", tmp_path / "b.md"
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "run.py"),
            "--smoke",
            "--json",
            str(json_path),
            "--markdown",
            str(markdown_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(json_path.read_text())

    assert results["mode"] == "smoke" and results["machine"]["logical_cores"] >= 1
    summary = results["detection"]["summary"]
    assert {row["scenario"] for row in summary} == {"v2", "deep", "v1", "stopped"}
    assert {row["waiter"] for row in summary} == {"aurora-wake", "amazon", "article", "bare-connect"}
    for row in summary:
        assert row["waits"] == 2
        assert set(row["lag"]) >= {"p50", "p95", "max"}
    ours = [row for row in summary if row["waiter"] == "aurora-wake"]
    assert all(row["completed"] == 2 and row["lag"]["p50"] is not None for row in ours)
    assert all("DescribeDBClusters" in row["rds_calls_per_wait"] for row in ours)
    for run in results["detection"]["runs"]:
        assert run["cluster_ready_at"] is not None  # every emulated cluster did wake
    assert results["detection"]["throttled_summary"]

    rows = results["many"]["rows"]
    assert [(row["waiter"], row["n"], row["clusters"]) for row in rows] == [
        ("aurora-wake", 10, 2),
        ("amazon", 10, 2),
    ]
    for row in rows:
        assert "error" not in row, row.get("error")
        assert row["released"] == 10 and row["rss_per_wait_bytes"] is not None
        assert row["loop_lag_ms"]["all"]["p99"] is not None
        assert row["release_lag_seconds"]["p95"] is not None

    goals = results["goals"]
    assert goals and all(goal["verdict"] in ("PASS", "MISS", "n/a") for goal in goals)
    markdown = markdown_path.read_text()
    assert markdown.startswith("# Benchmarks") and "| goal |" in markdown
    assert "python bench/run.py --smoke" in markdown
