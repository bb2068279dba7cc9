"""The example DAGs the demo can run: their files in the package, ids, tasks and table."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

#: Where the example DAGs are shipped in the package (links to ``example_dags/`` in the repository).
DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
#: The example DAGs' ETL table (see the DAGs' documentation); both DAGs write the same rows.
TABLE = "aurora_wake_example_sales"
#: AWS's default ``SecondsUntilAutoPause``.
AWS_DEFAULT_IDLE_SECONDS = 300


@dataclass(frozen=True)
class DemoDag:
    """One example DAG the demo can run.

    :param dag_id: The DAG id, which is also its file's name.
    :param summary: What it shows, for ``--help`` and the error that lists the choices.
    :param task_order: Its task ids in the order they run.
    :param window: It holds the cluster in a warm window: the demo then waits for the cluster
        to pause again after the run and checks that no hold is left on it.
    :param idle_seconds: The clusters' ``SecondsUntilAutoPause`` unless ``--idle-seconds`` is given.
    """

    dag_id: str
    summary: str
    task_order: tuple[str, ...]
    window: bool
    idle_seconds: int

    @property
    def file(self) -> Path:
        """The DAG's file in the installed package."""
        return DAGS_FOLDER / f"{self.dag_id}.py"

    @property
    def first_task(self) -> str:
        """The task that starts the DAG run."""
        return self.task_order[0]

    @property
    def read_back_task(self) -> str:
        """The ETL's last task: its XCom is the rows read back."""
        return next(task for task in self.task_order if task.rsplit(".", 1)[-1] == "read_back")

    def chain(self) -> str:
        """``wake >> ready >> ...``: the tasks as the DAG chains them."""
        return " >> ".join(self.task_order)


WAKE = DemoDag(
    dag_id="example_aurora_serverless_wake",
    summary="wake the cluster, wait (deferred) for a connection, run the ETL",
    task_order=("wake", "ready", "create_table", "load_rows", "read_back"),
    window=False,
    # AWS's default: this demo does not wait for the cluster to pause again.
    idle_seconds=AWS_DEFAULT_IDLE_SECONDS,
)
WINDOW = DemoDag(
    dag_id="example_aurora_warm_window",
    summary="hold the cluster warm at a capacity floor around the ETL, release it, see it pause again",
    task_order=tuple(
        f"warm.{task}"
        for task in ("hold", "ready", "hold_floor", "create_table", "load_rows", "read_back", "release")
    ),
    window=True,
    # Short, so that the demo sees the cluster pause again within its run (AWS's minimum is
    # 300 s; the emulator takes any idle time).
    idle_seconds=10,
)
#: The DAGs ``--dag`` chooses from, by id; the first is the default.
DEMO_DAGS = {dag.dag_id: dag for dag in (WAKE, WINDOW)}
DEFAULT_DAG = WAKE


def choices_text() -> str:
    """The DAGs to choose from, one per line, with what each shows."""
    return "\n".join(f"  {dag.dag_id}: {dag.summary}" for dag in DEMO_DAGS.values())


def demo_dag(text: str) -> DemoDag:
    """An argparse ``type``: the example DAG named ``text``.

    :param text: A DAG id of :data:`DEMO_DAGS`.
    :raises argparse.ArgumentTypeError: Naming the value and listing the choices.
    """
    dag = DEMO_DAGS.get(text)
    if dag is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an example DAG the demo runs; give one of:\n{choices_text()}"
        )
    return dag
