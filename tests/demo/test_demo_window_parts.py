"""Choosing the demo's DAG and idle time, and the window's end in the report: no server, no Airflow run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from airflow_aurora_wake.demo.cli import EXIT_SETUP, add_demo_parser, check_idle_seconds, run_demo
from airflow_aurora_wake.demo.engines import POSTGRES, DemoSetupError, EngineSetup, parse_server
from airflow_aurora_wake.demo.example_dag import DEFAULT_DAG, DEMO_DAGS, WAKE, WINDOW
from airflow_aurora_wake.demo.report import print_report
from airflow_aurora_wake.demo.sandbox import Folder
from airflow_aurora_wake.demo.window import WindowEnd
from airflow_aurora_wake.emulator.config import TimelineEvent

REPO = Path(__file__).resolve().parents[2]
HOLD_TAG = "aurora-wake:hold:example_aurora_warm_window.0123456789abcdef"


def demo_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="airflow-aurora-wake")
    add_demo_parser(parser.add_subparsers())
    return parser.parse_args(["demo", *argv])


def test_the_default_dag_is_the_wake_example_and_the_window_is_chosen_by_its_id() -> None:
    assert DEFAULT_DAG is WAKE
    assert demo_args().dag is WAKE
    assert demo_args("--dag", "example_aurora_warm_window").dag is WINDOW
    assert WINDOW.first_task == "warm.hold" and WINDOW.task_order[-1] == "warm.release"
    assert (WAKE.read_back_task, WINDOW.read_back_task) == ("read_back", "warm.read_back")


def test_an_unknown_dag_is_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        demo_args("--dag", "warm_window")

    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "argument --dag: 'warm_window' is not an example DAG the demo runs; give one of:" in err
    for dag in DEMO_DAGS.values():
        assert f"  {dag.dag_id}: {dag.summary}" in err


@pytest.mark.parametrize("dag", list(DEMO_DAGS.values()), ids=list(DEMO_DAGS))
def test_each_dag_ships_in_the_package_as_the_example_file_unchanged(dag: Any, tmp_path: Path) -> None:
    example = REPO / "example_dags" / f"{dag.dag_id}.py"
    assert dag.file.read_bytes() == example.read_bytes()
    folder = Folder(tmp_path, dag)
    folder.prepare()
    assert folder.dag_file.name == example.name
    assert folder.dag_file.read_bytes() == example.read_bytes()


def test_the_idle_time_defaults_per_dag_and_is_given_in_whole_seconds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert check_idle_seconds(demo_args()) == 300
    assert check_idle_seconds(demo_args("--dag", "example_aurora_warm_window")) == WINDOW.idle_seconds == 10
    assert check_idle_seconds(demo_args("--dag", "example_aurora_warm_window", "--idle-seconds", "3")) == 3
    with pytest.raises(SystemExit):
        demo_args("--idle-seconds", "2.5")
    assert "argument --idle-seconds: '2.5': give 1 to 86400 whole seconds" in capsys.readouterr().err


def test_a_window_idle_time_the_timeout_cannot_wait_for_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = demo_args("--dag", "example_aurora_warm_window", "--idle-seconds", "300", "--timeout", "120")
    with pytest.raises(DemoSetupError, match=r"--idle-seconds 300: .* within --timeout 120 s; give"):
        check_idle_seconds(args)
    # The wake demo does not wait for a pause: any idle time goes.
    assert check_idle_seconds(demo_args("--idle-seconds", "300", "--timeout", "120")) == 300

    assert run_demo(args) == EXIT_SETUP

    captured = capsys.readouterr()
    assert "--idle-seconds 300" in captured.err
    assert "checking what the demo needs" not in captured.err  # refused before any check or server


class Timelines:
    """The running emulator's one method the report reads: a cluster's timeline (hand-made events)."""

    def __init__(self, events: list[TimelineEvent]) -> None:
        self.events = events

    def timeline(self, identifier: str) -> list[TimelineEvent]:
        return self.events


def window_record() -> dict[str, Any]:
    tasks = {
        task: {"state": "success", "start": 1_800_000_010.0 + index, "end": 1_800_000_010.5 + index}
        for index, task in enumerate(WINDOW.task_order)
    }
    return {"label": "postgresql", "run_id": "manual__1", "state": "success", "tasks": tasks, "xcoms": {}}


def report(tmp_path: Path, end: WindowEnd) -> bool:
    """The report of one successful window DAG run on demo-pg that ended as ``end`` says."""
    engine = EngineSetup(POSTGRES, parse_server(POSTGRES.default_dsn, POSTGRES))
    events = [TimelineEvent(1_800_000_000.0, "paused", {})]
    return print_report(
        Timelines(events),  # type: ignore[arg-type]
        [engine],
        [window_record()],
        skipped=[],
        folder=Folder(tmp_path, WINDOW),
        runner_ok=True,
        keep=False,
        dag=WINDOW,
        windows={"demo-pg": end},
    )


def test_a_hold_left_behind_fails_the_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    end = WindowEnd(waited=True, paused=True, holds_left={HOLD_TAG: "min=4"}, checked_at=1_800_000_030.0)

    ok = report(tmp_path, end)

    out = capsys.readouterr().out
    assert not ok
    assert f"hold left behind: {HOLD_TAG} (min=4)  [RDS tags]" in out
    assert "demo-pg still carries 1 hold tag(s): a window was not released" in out
    assert "Every DAG run succeeded, but a warm window did not end as it should (see above)." in out


def test_a_cluster_that_did_not_pause_again_fails_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    end = WindowEnd(waited=True, paused=False, holds_left={}, checked_at=1_800_000_030.0)

    ok = report(tmp_path, end)

    out = capsys.readouterr().out
    assert not ok
    assert "demo-pg did not pause again within the demo's --timeout" in out
    assert "no hold left: no aurora-wake:hold: tag on the cluster  [RDS tags]" in out


def test_a_window_that_paused_again_with_no_hold_left_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = report(tmp_path, WindowEnd(waited=True, paused=True, holds_left={}, checked_at=1_800_000_030.0))

    assert ok
    assert (
        "each cluster got its own scaling back and paused again, and no hold is left"
        in capsys.readouterr().out
    )
