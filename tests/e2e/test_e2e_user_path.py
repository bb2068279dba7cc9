"""The README's "Point your own Airflow at the emulator", done as a user does it, command by command.

The emulator runs as its own process and prints ``airflow connections add`` commands; they run
as printed, through a shell, into a throwaway Airflow home's metadata database; then the
README's ``airflow variables set`` and ``airflow dags test`` commands run the example DAG. The
resume outlasts the sensor's check in the worker, so the sensor defers and ``airflow dags
test`` runs its trigger inline: the place where Airflow 3.3.2's asynchronous look-up does not
see connections stored in the metadata database. Every command line run here must appear in
that README section, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow_support import SALES_ROWS, sales_rows

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.db, pytest.mark.airflow]

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAG_ID = "example_aurora_serverless_wake"
README_SECTION = "## Point your own Airflow at the emulator"
EMULATOR_COMMAND = (
    "airflow-aurora-wake emulator --cluster sales:v2:postgresql --print-connections airflow-cli"
)
#: The README's commands after the pasted connections, as the shell runs them.
USER_COMMANDS = [
    "airflow db migrate",
    "airflow variables set aurora_wake_example_cluster sales",
    "airflow variables set aurora_wake_example_conn_id sales",
    f"airflow dags test {DAG_ID}",
]


def readme_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(README_SECTION)
    return text[start : text.index("\n## ", start + 1)]


def user_environment(home: Path) -> dict[str, str]:
    """A shell's environment with only the user's Airflow home: no setting of the pytest session."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_", "AIRFLOW__", "AURORA_WAKE_TEST_", "AWS_"))
    }
    return {
        **inherited,
        "PATH": f"{BIN}{os.pathsep}{inherited.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def run_shell(line: str, env: dict[str, str], timeout: float = 300.0) -> str:
    """Run one command line through ``sh`` as a user's terminal would; return its output."""
    done = subprocess.run(
        ["sh", "-c", line], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{line!r} exited {done.returncode}:\n{output[-4000:]}"
    return output


@pytest.fixture
def printing_emulator(postgres_server: Any) -> Iterator[tuple[dict[str, Any], list[str]]]:
    """The emulator as a process; its JSON line and the connection commands it printed."""
    # The README's command as it is: its 15 s resume outlasts the wake's 3 s nudge and the
    # sensor's 5 s check in the worker, so the sensor defers.
    command = [str(BIN / "airflow-aurora-wake"), *EMULATOR_COMMAND.split()[1:]]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    ) as emulator:
        try:
            assert emulator.stdout is not None
            announcement = json.loads(emulator.stdout.readline())
            printed: list[str] = []
            for line in iter(emulator.stdout.readline, ""):
                if not line.strip():  # a blank line ends the block
                    break
                printed.append(line.rstrip("\n"))
            yield announcement, printed
        finally:
            emulator.terminate()
            try:
                emulator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                emulator.kill()
                emulator.wait(timeout=30)


@pytest.mark.timeout(900)
def test_a_user_stores_the_printed_connections_and_airflow_dags_test_waits_and_succeeds(
    printing_emulator: tuple[dict[str, Any], list[str]], tmp_path: Path, postgres_server: Any
) -> None:
    section = readme_section()
    for command in [EMULATOR_COMMAND, *USER_COMMANDS]:
        assert command in section, f"the README no longer says {command!r}"
    assert 'cp example_dags/example_aurora_serverless_wake.py "$AIRFLOW_HOME/dags/"' in section

    announcement, printed = printing_emulator
    connection_commands = [line for line in printed if line.startswith("airflow connections add ")]
    assert [line.split()[3] for line in connection_commands] == ["aws_default", "sales"]
    assert "--conn-password" not in connection_commands[1]  # never a database password

    home = tmp_path / "airflow-home"
    (home / "dags").mkdir(parents=True)
    env = user_environment(home)
    run_shell(USER_COMMANDS[0], env)
    for line in connection_commands:  # as pasted: stored in the metadata database
        run_shell(line, env)
    for line in USER_COMMANDS[1:3]:
        run_shell(line, env)
    shutil.copy(REPO_ROOT / "example_dags" / f"{DAG_ID}.py", home / "dags")

    output = run_shell(USER_COMMANDS[3], env, timeout=600)

    with sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True) as db:
        (run_id, state), *others = db.execute(
            "SELECT run_id, state FROM dag_run WHERE dag_id = ?", (DAG_ID,)
        ).fetchall()
        tasks = dict(
            db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (DAG_ID, run_id)
            ).fetchall()
        )
    assert others == []
    try:
        assert (state, tasks) == (
            "success",
            dict.fromkeys(["wake", "ready", "create_table", "load_rows", "read_back"], "success"),
        ), output[-4000:]
        # The sensor deferred: the inline trigger found the stored connections and waited.
        assert re.search(r"deferring for up to \d+", output), output[-4000:]
        assert "no Airflow connection with this id exists" not in output
        assert announcement["clusters"][0]["identifier"] == "sales"
    finally:
        rows = sales_rows(postgres_server, run_id, delete=True)
    assert rows == SALES_ROWS
