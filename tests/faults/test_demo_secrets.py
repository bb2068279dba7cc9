"""The demo (``airflow-aurora-wake demo``) never shows the database password.

The demo is run as a user runs it, with the password login's user in its ``--mysql-dsn`` and
the password in ``MYSQL_PWD`` (MariaDB checks that password), and ``--keep`` so that everything
it wrote (Airflow home, SQLite metadata database, task logs, emulator log, results) can be
searched too. PostgreSQL is left out: on the
shared test server the demo's table belongs to ``postgres`` and the password login may not
write to it. The demo uses no IAM login, so there is no token to look for.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.faults, pytest.mark.db]


def test_demo_output_and_files_never_show_the_password(
    mariadb_server: Any, password_login: Any, tmp_path: Path
) -> None:
    password = password_login.password
    dsn = (
        f"mysql://{password_login.user}@{mariadb_server.host}:{mariadb_server.port}/{mariadb_server.database}"
    )
    # A user's shell: none of the test session's Airflow or AWS settings.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AIRFLOW", "AWS_", "AURORA_WAKE_TEST_"))
    }
    env["MYSQL_PWD"] = password  # the demo takes passwords from the environment only
    env["TMPDIR"] = str(tmp_path)  # the demo's temporary folder lands here, to be searched
    demo = subprocess.run(
        [sys.executable, "-m", "airflow_aurora_wake.cli", "demo", "--no-postgres", "--mysql-dsn", dsn,
         "--resume-seconds", "2", "--keep"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "ready" in demo.stdout.lower()  # it told the story
    assert password not in demo.stdout and password not in demo.stderr
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written, "the demo kept no files with --keep"
    leaked = [str(path) for path in written if password.encode() in path.read_bytes()]
    assert not leaked, f"the password is in {leaked}"
