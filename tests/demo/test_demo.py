"""``airflow-aurora-wake demo`` as a user runs it: a subprocess, its output, its exit status.

The demo starts the emulator, ``airflow db migrate`` and ``dag.test()`` of the example DAG in
child processes, so each test checks afterwards that none of them is left: no process on the
machine refers to the demo's folder (in its command line or its environment), and the folder
is gone unless ``--keep``. ``TMPDIR`` points the demo's temporary folder into the test's own.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.emulator, pytest.mark.db]

AIRFLOW_3 = importlib.metadata.version("apache-airflow").startswith("3.")
DEMO = [sys.executable, "-m", "airflow_aurora_wake.cli", "demo"]
FOLDER = re.compile(r"(?:Removed the demo's folder|The demo's folder \(Airflow home, logs\) is kept:) (\S+)")


def run_demo(
    tmp_path: Path, *args: str, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the demo with its temporary folder under ``tmp_path``; bounded by ``timeout``."""
    return subprocess.run(
        [*DEMO, *args],
        env={**os.environ, "TMPDIR": str(tmp_path), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def processes_referring_to(text: str) -> list[str]:
    """Command lines of the processes whose command line or environment mentions ``text``."""
    found = []
    needle = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in cmdline or needle in environ:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def rows_of_run(server: Any, run_id: str) -> int:
    """How many rows of the example DAG's table carry ``run_id`` on a real server (0 if no table)."""
    sql = "SELECT COUNT(*) FROM aurora_wake_example_sales WHERE run_id = %s"
    if server.engine == "postgresql":
        import psycopg

        with psycopg.connect(
            host=server.host, port=server.port, user=server.user, dbname=server.database
        ) as db:
            exists = db.execute("SELECT to_regclass('aurora_wake_example_sales')").fetchone()
            return int(db.execute(sql, (run_id,)).fetchone()[0]) if exists and exists[0] else 0  # type: ignore[index]
    import pymysql

    with (
        pymysql.connect(host=server.host, port=server.port, user=server.user, database=server.database) as db,
        db.cursor() as cursor,
    ):
        if not cursor.execute("SHOW TABLES LIKE 'aurora_wake_example_sales'"):
            return 0
        cursor.execute(sql, (run_id,))
        return int(cursor.fetchone()[0])  # type: ignore[index]


def demo_folder(output: str) -> Path:
    match = FOLDER.search(output)
    assert match, output
    return Path(match.group(1))


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_demo_prints_the_timeline_and_leaves_nothing(
    tmp_path: Path, postgres_server: Any, mariadb_server: Any, password_login: Any
) -> None:
    # MySQL through the password login, its password in the variable --password-env names: it
    # must not appear anywhere in the output.
    mysql_dsn = f"mysql://{password_login.user}@127.0.0.1:3306/test"

    result = run_demo(
        tmp_path,
        "--resume-seconds", "2", "--mysql-dsn", mysql_dsn, "--password-env", "AURORA_WAKE_DEMO_PW",
        env={"AURORA_WAKE_DEMO_PW": password_login.password},
    )  # fmt: skip

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for cluster, engine in (("demo-pg", "PostgreSQL"), ("demo-mysql", "MySQL")):
        timeline = re.search(
            rf"Timeline of {cluster} \(Aurora Serverless v2, {engine}\), DAG run \S+: success\n(.*?)\n\n",
            result.stdout,
            re.S,
        )
        assert timeline, result.stdout
        steps = timeline.group(1)
        # The story, in order, each line with seconds since the start and since the step before.
        # The wake's connection is held until the 2 s resume is over: the sensor's first check
        # finds the cluster warm.
        order = ["paused", "DAG run started", "wake requested: connection-nudge", "resume started",
                 "cluster ready: accepts connections (resume took 2.0 s)", "sensor started",
                 "sensor ready at the first check in the worker, no deferral: SELECT 1 succeeded",
                 "ETL done: table created, 3 rows loaded and read back"]  # fmt: skip
        positions = [steps.find(step) for step in order]
        assert -1 not in positions and positions == sorted(positions), steps
        lines = [line for line in steps.splitlines()[1:] if not line.startswith("  rows read back")]
        assert all(re.match(r"\s+\d+\.\ds\s+\+\d+\.\ds  ", line) for line in lines), steps
        assert "deferred after" not in steps and "trigger fired" not in steps
    assert "[['apples', 3], ['bread', 2], ['coffee', 5]]" in result.stdout
    # The user's databases are left as they were: the demo's rows are deleted again.
    run_ids = dict(re.findall(r"Timeline of (demo-\w+) .*?DAG run (\S+): success", result.stdout))
    assert rows_of_run(postgres_server, run_ids["demo-pg"]) == 0
    assert rows_of_run(mariadb_server, run_ids["demo-mysql"]) == 0
    # Progress while waiting, on stderr: the clusters' changes and the tasks' states.
    assert "demo-pg: resume requested (by a connection)" in result.stderr
    assert "demo-mysql: task read_back success" in result.stderr
    assert password_login.password not in output
    assert "Traceback" not in output
    folder = demo_folder(result.stdout)
    assert folder.parent == tmp_path
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []
    assert processes_referring_to(str(folder)) == []


def test_demo_keep_leaves_the_folder_with_the_logs(tmp_path: Path, postgres_server: Any) -> None:
    # A resume longer than the wake's 3 s connection nudge plus the sensor's 5 s check: it defers.
    result = run_demo(tmp_path, "--resume-seconds", "20", "--no-mysql", "--keep")

    assert result.returncode == 0, result.stdout + result.stderr
    folder = demo_folder(result.stdout)
    # The deferral and the trigger's event in the timeline are Airflow's records in the kept
    # metadata database: the audit log's "deferred" row and the trigger row the sensor points to.
    deferred = re.search(
        r"sensor deferred after (\d+\.\d) s checking in the worker: worker slot released, "
        r"AuroraServerlessReadyTrigger waits in the triggerer  \[task ready\]",
        result.stdout,
    )
    assert deferred, result.stdout
    with sqlite3.connect(folder / "airflow-home" / "airflow.db") as db:
        (start, deferred_at, classpath) = db.execute(
            "SELECT ti.start_date, log.dttm, trigger.classpath FROM task_instance ti "
            "JOIN log ON log.run_id = ti.run_id AND log.task_id = ti.task_id AND log.event = 'deferred' "
            "JOIN trigger ON trigger.id = ti.trigger_id WHERE ti.task_id = 'ready'"
        ).fetchone()
    assert classpath.endswith(".AuroraServerlessReadyTrigger")
    seconds = datetime.fromisoformat(deferred_at) - datetime.fromisoformat(start)
    assert float(deferred.group(1)) == round(seconds.total_seconds(), 1)
    fired = re.search(
        r"trigger fired: SELECT 1 succeeded \(\d+ probe attempts? in the triggerer\); the sensor waited "
        r"(\d+\.\d) s: (\d+\.\d) s checking in the worker, then (\d+\.\d) s deferred in the "
        r"triggerer \(no worker slot\)  \[triggerer\]",
        result.stdout,
    )
    assert fired, result.stdout
    whole, worker, triggerer = (float(number) for number in fired.groups())
    assert worker == float(deferred.group(1))
    assert whole == pytest.approx(worker + triggerer)
    assert re.search(r"sensor done: resumed in the worker \d+\.\d s after the event", result.stdout)
    assert "demo-pg: task ready deferred (worker slot released" in result.stderr
    assert folder.parent == tmp_path
    for log in ("dag-test.log", "airflow-db-migrate.log", "emulator.log"):
        assert (folder / log).is_file()
        assert str(folder / log) in result.stdout
    assert (folder / "airflow-home" / "airflow.db").is_file()
    assert "demo-mysql" not in result.stdout
    assert processes_referring_to(str(folder)) == []


def test_no_database_says_what_it_needs(tmp_path: Path, closed_port: int) -> None:
    result = run_demo(
        tmp_path, "--postgres-dsn", f"postgresql://postgres@127.0.0.1:{closed_port}/test", timeout=60
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"nothing answers at 127.0.0.1:{closed_port}" in result.stderr
    assert "--postgres-dsn postgresql://USER@HOST:PORT/DATABASE" in result.stderr
    assert "--mysql-dsn mysql://USER@HOST:PORT/DATABASE" in result.stderr
    assert "PGPASSWORD or MYSQL_PWD" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_wrong_password_is_refused_before_anything_starts(tmp_path: Path, password_login: Any) -> None:
    result = run_demo(
        tmp_path,
        "--no-mysql",
        "--postgres-dsn",
        f"postgresql://{password_login.user}@127.0.0.1:5432/test",
        timeout=60,
        env={"PGPASSWORD": "not-the-password-42"},
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "answered but refused" in result.stderr
    assert password_login.user in result.stderr
    assert "not-the-password-42" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


def timeline_seconds(steps: str, what: str) -> float:
    """The ``t`` column (seconds since the first step) of the timeline line that says ``what``."""
    line = next(line for line in steps.splitlines() if what in line)
    return float(line.split()[0].rstrip("s"))


def test_the_warm_window_demo_shows_the_window_and_leaves_no_hold(
    tmp_path: Path, postgres_server: Any
) -> None:
    idle = 3
    result = run_demo(
        tmp_path,
        "--dag", "example_aurora_warm_window", "--resume-seconds", "2", "--idle-seconds", str(idle),
        "--no-mysql",
    )  # fmt: skip

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    timeline = re.search(
        r"Timeline of demo-pg \(Aurora Serverless v2, PostgreSQL\), DAG run (\S+): success\n(.*?)\n\n",
        result.stdout,
        re.S,
    )
    assert timeline, result.stdout
    run_id, steps = timeline.groups()
    # Airflow 2.11's dag.test() records no task start: the run's start is told on Airflow 3 only.
    started = ["DAG run started (task warm.hold, a setup task)"] if AIRFLOW_3 else []
    # The window's story, in order: resumed by the hold's scaling change (no connection), the
    # floor held through the ETL, restored by the release, the cluster paused again after its
    # idle time, and no hold tag on the cluster at the end.
    order = [
        "paused (RDS says",
        *started,
        "floor raised by the hold: MinCapacity 0 -> 4 ACUs, MaxCapacity 4 -> 8 ACUs (ModifyDBCluster)",
        "resume started by the scaling change (ModifyDBCluster), not by a connection",
        "cluster ready: accepts connections (resume took 2.0 s)",
        "floor held for the ETL: MinCapacity 4 ACUs, MaxCapacity 8 ACUs",
        "ETL done: table created, 3 rows loaded and read back, the floor held throughout "
        "(MinCapacity 4 ACUs, no pause)",
        f"floor restored by the release: MinCapacity 4 -> 0 ACUs, MaxCapacity 8 -> 4 ACUs, auto-pause after "
        f"{idle} s idle (ModifyDBCluster)",
        "window released (teardown): ",
        f"paused again after {idle} s idle (SecondsUntilAutoPause): the window is over",
        "no hold left: no aurora-wake:hold: tag on the cluster  [RDS tags]",
    ]
    positions = [steps.find(step) for step in order]
    assert -1 not in positions and positions == sorted(positions), steps
    assert "by a connection)" not in steps and "hold left behind" not in steps
    # The pause comes at least the idle time after the floor went back to 0 (each t to 0.1 s).
    restored = timeline_seconds(steps, "floor restored by the release")
    assert timeline_seconds(steps, "paused again") - restored >= idle - 0.1
    # What the window cost, from the release's XCom: the floor times the hours held.
    cost = re.search(
        r"window released \(teardown\): (\d+\.\d) s held at a floor of 4 ACUs, cost ([\d.]+)", steps
    )
    assert cost, steps
    held, acu_hours = (float(number) for number in cost.groups())
    assert held > 0 and acu_hours == pytest.approx(4 * held / 3600, abs=1e-4 + 4 * 0.05 / 3600)
    assert "[['apples', 3], ['bread', 2], ['coffee', 5]]" in result.stdout
    assert "no hold is left" in result.stdout
    # The live lines on stderr name the scaling change as the resume's cause, and the pause again.
    assert (
        "demo-pg: resume requested by the scaling change (ModifyDBCluster), not by a connection"
        in result.stderr
    )
    assert f"demo-pg: paused again after {idle} s idle (SecondsUntilAutoPause)" in result.stderr
    assert "Traceback" not in output
    assert rows_of_run(postgres_server, run_id) == 0
    folder = demo_folder(result.stdout)
    assert not folder.exists()
    assert processes_referring_to(str(folder)) == []
