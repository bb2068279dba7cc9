"""Benchmark of airflow-aurora-wake on the emulator: detection lag, AWS API cost, many waits.

One command runs everything and writes ``docs/benchmarks.md`` and ``docs/benchmarks.json``::

    .venv/bin/python bench/run.py            # full run (real durations), about 12-15 minutes
    .venv/bin/python bench/run.py --quick    # smoke run (timings x0.2, small sizes), ~3 minutes

The local PostgreSQL server must be up (the emulated clusters front it). See docs/benchmarks.md
for what is measured and how.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import airflow_env  # noqa: E402  (configures Airflow before anything imports it)

REPO_ROOT = BENCH_DIR.parent
#: Part 1 runs these groups one after the other (each group's waiters all at once). The Amazon
#: trigger creates one aiobotocore client per trigger, ~0.1 s of CPU each, serialized on
#: asgiref's single sync_to_async thread that every trigger's connection look-up also uses: in
#: one process, 80 of them delay the other waiters' start by seconds (measured in part 3).
WAITER_GROUPS: tuple[tuple[str, ...], ...] = (("aurora-wake", "article", "bare-connect"), ("amazon",))


def machine() -> dict[str, Any]:
    """CPU, cores, memory, OS, Python and the versions that matter."""
    import psutil

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in (
        "apache-airflow",
        "apache-airflow-providers-amazon",
        "aiobotocore",
        "botocore",
        "moto",
        "asyncpg",
        "psycopg",
        "airflow-aurora-wake",
    ):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    postgres = None
    try:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="test", connect_timeout=5
        ) as c:
            row = c.execute("SHOW server_version").fetchone()
            postgres = row[0] if row else None
    except Exception as exc:  # reported, the run fails later with a clearer message
        postgres = f"unreachable: {exc}"
    return {
        "cpu": cpu,
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "postgresql_upstream": postgres,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_commit() -> str | None:
    """The commit the run measured (with ``+dirty`` when the tree has changes)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "airflow_aurora_wake"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


# --------------------------------------------------------------------------- settings
def settings(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes and timings for this run (full, ``--quick`` or ``--smoke``)."""
    if args.smoke:
        config: dict[str, Any] = {
            "mode": "smoke",
            "wakes": 2,
            "scale": 0.2,
            "scenarios": ["v2", "deep", "v1", "stopped"],
            "throttle_scenarios": ["v2"],
            "amazon_delay": 2,
            "many_resume_seconds": 6.0,
            "many": [("aurora-wake", 10, 2), ("amazon", 10, 2)],
        }
    elif args.quick:
        config = {
            "mode": "quick",
            "wakes": 5,
            "scale": 0.2,
            "scenarios": ["v2", "deep", "v1", "stopped"],
            "throttle_scenarios": ["v2", "stopped"],
            "amazon_delay": 30,
            "many_resume_seconds": 15.0,
            "many": [
                ("aurora-wake", 100, 1),
                ("aurora-wake", 100, 10),
                ("aurora-wake", 1000, 10),
                ("aurora-wake-unshared", 100, 10),
                ("amazon", 100, 10),
            ],
        }
    else:
        config = {
            "mode": "full",
            "wakes": 20,
            "scale": 1.0,
            "scenarios": ["v2", "deep", "v1", "stopped"],
            "throttle_scenarios": ["v2", "deep", "v1", "stopped"],
            "amazon_delay": 30,
            "many_resume_seconds": 40.0,
            "many": [
                ("aurora-wake", 100, 1),
                ("aurora-wake", 100, 10),
                ("aurora-wake", 1000, 1),
                ("aurora-wake", 1000, 10),
                ("aurora-wake", 2000, 1),
                ("aurora-wake", 2000, 10),
                ("aurora-wake-unshared", 100, 10),
                ("amazon", 100, 10),
                ("amazon", 1000, 10),
            ],
        }
    if args.wakes:
        config["wakes"] = args.wakes
    if args.scale:
        config["scale"] = args.scale
    if args.amazon_delay:
        config["amazon_delay"] = args.amazon_delay
    if args.skip:
        config["skip"] = list(args.skip)
    else:
        config["skip"] = []
    return config


# --------------------------------------------------------------------------- parts
def run_detection(config: dict[str, Any], results: dict[str, Any]) -> None:
    """Parts 1 and 2 in one emulator process: a normal batch, then a throttled batch."""
    import detection
    import waiters as w
    from emulator_proc import EmulatorProcess

    with EmulatorProcess() as emu:
        airflow_env.configure_connections(emu.endpoint_url, emu.region)
        placeholder = emu.placeholder
        ref = w.ClusterRef(
            placeholder["identifier"], placeholder["host"], placeholder["port"], emu.endpoint_url, emu.region
        )

        async def batch(label: str, scenarios: list[str], throttle: float) -> list[dict[str, Any]]:
            records: list[dict[str, Any]] = []
            for index, group in enumerate(WAITER_GROUPS):
                records += await detection.run_batch(
                    emu,
                    scenarios=scenarios,
                    wakes=config["wakes"],
                    scale=config["scale"],
                    label=f"{label}{index}",
                    throttle_fraction=throttle,
                    amazon_delay=config["amazon_delay"],
                    only=group,
                )
            return records

        async def main() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            await w.warm_up(ref)
            normal = await batch("lag", config["scenarios"], 0.0)
            throttled: list[dict[str, Any]] = []
            if "throttle" not in config["skip"]:
                throttled = await batch("thr", config["throttle_scenarios"], 0.3)
            return normal, throttled

        started = time.time()
        normal, throttled = asyncio.run(main())
        results["detection"] = {
            "seconds": round(time.time() - started, 1),
            "scenarios": {
                name: {
                    "title": detection.SCENARIOS[name].title,
                    "timings": detection.SCENARIOS[name].scaled_timings(config["scale"]),
                    "wake_step": detection.SCENARIOS[name].wake,
                }
                for name in config["scenarios"]
            },
            "summary": detection.aggregate(normal),
            "throttled_summary": detection.aggregate(throttled) if throttled else [],
            "runs": normal,
            "throttled_runs": throttled,
        }


def run_many(config: dict[str, Any], results: dict[str, Any], log_dir: Path) -> None:
    """Part 3: each configuration in a fresh worker process, one emulator process for all."""
    from emulator_proc import EmulatorProcess

    rows = []
    resume = float(config["many_resume_seconds"])
    with EmulatorProcess() as emu:
        for index, (waiter, n, cluster_count) in enumerate(config["many"]):
            names = [f"many{index}-{waiter}-{n}-{i}" for i in range(cluster_count)]
            for name in names:
                if waiter == "amazon":
                    spec = {"state": "stopped", "timings": {"start_seconds": resume}}
                else:
                    spec = {"state": "paused", "timings": {"resume_seconds": resume}}
                emu.add_cluster(name, kind="serverless-v2", **spec)
            output = log_dir / f"many-{index}.json"
            worker_config = {
                "endpoint_url": emu.endpoint_url,
                "region": emu.region,
                "waiter": waiter,
                "n": n,
                "clusters": names,
                "placeholder": emu.placeholder,
                "output": str(output),
                "log_file": str(log_dir / f"many-{index}.log"),
                "amazon_delay": config["amazon_delay"],
                "resume_seconds": resume,
            }
            started = time.time()
            print(f"  part 3: {waiter} N={n} on {cluster_count} cluster(s) ...", flush=True)
            completed = subprocess.run(
                [sys.executable, str(BENCH_DIR / "many.py"), json.dumps(worker_config)],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if completed.returncode != 0 or not output.exists():
                rows.append(
                    {
                        "waiter": waiter,
                        "n": n,
                        "clusters": cluster_count,
                        "error": (completed.stderr or completed.stdout)[-2000:],
                    }
                )
                print(f"    failed: {(completed.stderr or '')[-500:]}", flush=True)
                continue
            row = json.loads(output.read_text())
            row["run_seconds"] = round(time.time() - started, 1)
            rows.append(row)
            print(
                f"    {row['run_seconds']} s: RSS/wait {row['rss_per_wait_bytes'] / 1024:.1f} KB, "
                "loop lag p99 "
                f"{row['loop_lag_ms']['all']['p99']} ms, release p95 {row['release_lag_seconds']['p95']} s",
                flush=True,
            )
    results["many"] = {"resume_seconds": resume, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: timings x0.2, 5 wakes, small N")
    parser.add_argument("--smoke", action="store_true", help="tiny run for the test suite (not a benchmark)")
    parser.add_argument("--wakes", type=int, default=None, help="wakes per scenario per waiter")
    parser.add_argument("--scale", type=float, default=None, help="factor on the emulator's timings")
    parser.add_argument(
        "--amazon-delay", type=int, default=None, help="override the Amazon waiter_delay (30)"
    )
    parser.add_argument(
        "--skip", action="append", choices=["detection", "throttle", "many"], help="skip a part (repeatable)"
    )
    docs = REPO_ROOT / "docs"
    parser.add_argument("--json", type=Path, default=docs / "benchmarks.json", help="raw figures")
    parser.add_argument("--markdown", type=Path, default=docs / "benchmarks.md", help="the report")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="only re-render the report from saved raw figures"
    )
    args = parser.parse_args(argv)
    if args.from_json is not None:
        import report

        saved = json.loads(args.from_json.read_text())
        saved["goals"] = report.goals(saved)
        args.from_json.write_text(json.dumps(saved, indent=1, default=str) + "\n")
        report.write_report(args.markdown, report.render(saved, json_path=args.from_json))
        print(f"re-rendered {args.markdown} from {args.from_json}")
        return 0
    config = settings(args)
    given = sys.argv[1:] if argv is None else argv
    command = "python bench/run.py" + (" " + shlex.join(given) if given else "")
    started = time.time()
    results: dict[str, Any] = {
        "command": command,
        "mode": config["mode"],
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "commit": git_commit(),
        "machine": machine(),
        "config": {k: v for k, v in config.items()},
    }
    with tempfile.TemporaryDirectory(prefix="aurora-wake-bench-") as tmp:
        if "detection" not in config["skip"]:
            print("parts 1-2: detection lag, false ready, API cost, throttling ...", flush=True)
            run_detection(config, results)
        if "many" not in config["skip"]:
            print("part 3: many waits in one process ...", flush=True)
            run_many(config, results, Path(tmp))
    results["seconds"] = round(time.time() - started, 1)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    import report

    results["goals"] = report.goals(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    report.write_report(args.markdown, report.render(results, json_path=args.json))
    print(f"wrote {args.markdown} and {args.json} in {results['seconds']} s", flush=True)
    for goal in results["goals"]:
        print(f"  {goal['verdict']:4}  {goal['goal']}: {goal['measured']}  (peer: {goal['peer']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
