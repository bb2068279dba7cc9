"""Check the built wheel and sdist: what they must hold, what they must not, and that the wheel
built from the sdist is the wheel built from the source tree.

Usage: python .ci/check_artifacts.py REPO WHEEL SDIST WHEEL_FROM_SDIST

Standard library only: it runs before any environment holds the package. Exits 1 with one line
per problem; prints a summary of the wheel's contents otherwise.
"""

from __future__ import annotations

import configparser
import hashlib
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath

PACKAGE = "airflow_aurora_wake"
# Names that are never part of a distribution: caches, bytecode, build and environment debris.
JUNK_PARTS = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".venv", ".git"}
)
JUNK_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".orig", ".rej", ".swp", "~")
WHEEL_REQUIRED = [
    f"{PACKAGE}/__init__.py",
    f"{PACKAGE}/py.typed",
    f"{PACKAGE}/cli.py",
    f"{PACKAGE}/hooks/aurora_serverless.py",
    f"{PACKAGE}/operators/aurora_serverless.py",
    f"{PACKAGE}/sensors/aurora_serverless.py",
    f"{PACKAGE}/triggers/aurora_serverless.py",
    f"{PACKAGE}/plugins.py",
    f"{PACKAGE}/timetables/prewake.py",
    f"{PACKAGE}/operators/aurora_prewake.py",
    f"{PACKAGE}/dag_factories/prewake.py",
    f"{PACKAGE}/demo/dags/example_aurora_serverless_wake.py",
    f"{PACKAGE}/demo/dags/example_aurora_warm_window.py",
]
ENTRY_POINTS = {
    ("console_scripts", "airflow-aurora-wake"): f"{PACKAGE}.cli:main",
    ("apache_airflow_provider", "provider_info"): f"{PACKAGE}:get_provider_info",
    ("airflow.plugins", "aurora_wake"): f"{PACKAGE}.plugins:AuroraWakePlugin",
}
SDIST_REQUIRED = [
    "PKG-INFO",
    "pyproject.toml",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "constraints/airflow-3.3-py3.11.txt",
    "constraints/airflow-2.11-py3.11.txt",
    "tests/conftest.py",
    "docs/emulator.md",
    "bench/run.py",
    ".ci/run",
    f"{PACKAGE}/py.typed",
]
# The demo runs these DAGs from inside the package: each file in the wheel is the example's copy.
DEMO_DAGS = [
    (f"{PACKAGE}/demo/dags/{name}", f"example_dags/{name}")
    for name in ("example_aurora_serverless_wake.py", "example_aurora_warm_window.py")
]

problems: list[str] = []


def junk(name: str) -> bool:
    path = PurePosixPath(name)
    return any(part in JUNK_PARTS for part in path.parts) or name.endswith(JUNK_SUFFIXES)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_wheel(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


def read_sdist(path: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """Return the sdist's regular files and its symbolic links (target resolved), by relative path."""
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    with tarfile.open(path) as archive:
        members = archive.getmembers()
        roots = {PurePosixPath(member.name).parts[0] for member in members}
        if len(roots) != 1:
            problems.append(f"sdist: expected one top-level folder, found {sorted(roots)}")
        for member in members:
            relative = str(PurePosixPath(*PurePosixPath(member.name).parts[1:]))
            if member.isfile():
                extracted = archive.extractfile(member)
                assert extracted is not None
                files[relative] = extracted.read()
            elif member.issym():
                target = PurePosixPath(relative).parent / member.linkname
                links[relative] = _normalise(target)
            elif not member.isdir():
                problems.append(f"sdist: {relative} is neither a file, a folder nor a link")
    return files, links


def _normalise(path: PurePosixPath) -> str:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if not parts:
                return "<outside the sdist>"
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def check_wheel(wheel: dict[str, bytes], repo: Path) -> str:
    dist_infos = {name.split("/")[0] for name in wheel if name.split("/")[0].endswith(".dist-info")}
    if len(dist_infos) != 1:
        problems.append(f"wheel: expected one .dist-info folder, found {sorted(dist_infos)}")
        return ""
    dist_info = dist_infos.pop()
    for name in sorted(wheel):
        top = name.split("/")[0]
        if top not in (PACKAGE, dist_info):
            problems.append(f"wheel: {name} is outside the package (tests and examples go in the sdist)")
        if junk(name):
            problems.append(f"wheel: {name} is junk")
    required = [*WHEEL_REQUIRED, *(f"{dist_info}/{leaf}" for leaf in ("METADATA", "WHEEL", "RECORD"))]
    required += [f"{dist_info}/entry_points.txt", f"{dist_info}/licenses/LICENSE"]
    for name in required:
        if name not in wheel:
            problems.append(f"wheel: {name} is missing")
    if f"{dist_info}/entry_points.txt" in wheel:
        parser = configparser.ConfigParser(delimiters=("=",))
        parser.optionxform = str  # entry point names are case-sensitive
        parser.read_string(wheel[f"{dist_info}/entry_points.txt"].decode())
        for (group, name), value in ENTRY_POINTS.items():
            found = parser.get(group, name, fallback=None)
            if found != value:
                problems.append(f"wheel: entry point [{group}] {name} is {found!r}, expected {value!r}")
    for in_wheel, in_repo in DEMO_DAGS:
        if in_wheel in wheel and wheel[in_wheel] != (repo / in_repo).read_bytes():
            problems.append(f"wheel: {in_wheel} differs from {in_repo}")
    metadata = wheel.get(f"{dist_info}/METADATA", b"").decode()
    for line in ("Name: airflow-aurora-wake", "License-Expression: Apache-2.0", "Requires-Python: >=3.11"):
        if line not in metadata.splitlines():
            problems.append(f"wheel: METADATA lacks {line!r}")
    for extra in ("emulator", "demo", "postgres", "mysql"):
        if f"Provides-Extra: {extra}" not in metadata.splitlines():
            problems.append(f"wheel: METADATA lacks the {extra!r} extra")
    return dist_info


def check_sdist(files: dict[str, bytes], links: dict[str, str], repo: Path) -> None:
    for name in SDIST_REQUIRED:
        if name not in files:
            problems.append(f"sdist: {name} is missing")
    for example in sorted((repo / "example_dags").glob("*.py")):
        name = f"example_dags/{example.name}"
        if files.get(name) != example.read_bytes():
            problems.append(f"sdist: {name} is missing or differs from the repository's")
    for name in sorted([*files, *links]):
        if junk(name):
            problems.append(f"sdist: {name} is junk")
    for link, target in sorted(links.items()):
        if target not in files:
            problems.append(f"sdist: the link {link} points at {target}, which the sdist lacks")


def compare_package(wheel: dict[str, bytes], files: dict[str, bytes], links: dict[str, str]) -> None:
    """The package in the wheel is the package in the sdist, links resolved, file for file."""
    source = {name: data for name, data in files.items() if name.startswith(f"{PACKAGE}/")}
    source.update({link: files[target] for link, target in links.items() if target in files})
    built = {name: data for name, data in wheel.items() if name.startswith(f"{PACKAGE}/")}
    for name in sorted(source.keys() - built.keys()):
        problems.append(f"wheel: {name} is in the sdist's package but not in the wheel")
    for name in sorted(built.keys() - source.keys()):
        problems.append(f"wheel: {name} is in the wheel but not in the sdist's package")
    for name in sorted(source.keys() & built.keys()):
        if source[name] != built[name]:
            problems.append(f"wheel: {name} differs from the sdist's copy")


def compare_wheels(from_tree: dict[str, bytes], from_sdist: dict[str, bytes]) -> None:
    tree = {name: digest(data) for name, data in from_tree.items()}
    sdist = {name: digest(data) for name, data in from_sdist.items()}
    for name in sorted(tree.keys() - sdist.keys()):
        problems.append(f"wheel from the sdist: {name} is missing")
    for name in sorted(sdist.keys() - tree.keys()):
        problems.append(f"wheel from the sdist: {name} is extra")
    for name in sorted(tree.keys() & sdist.keys()):
        if tree[name] != sdist[name]:
            problems.append(f"wheel from the sdist: {name} differs")


def untracked(files: dict[str, bytes], links: dict[str, str], repo: Path) -> list[str]:
    """Files in the sdist that git does not track (a local file would ship): notes, not failures."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z"], capture_output=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    tracked = set(listed.decode().split("\0"))
    generated = {"PKG-INFO"}
    return sorted(name for name in [*files, *links] if name not in tracked and name not in generated)


def summary(wheel: dict[str, bytes], dist_info: str) -> None:
    groups: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for name, data in wheel.items():
        parts = name.split("/")
        group = "/".join(parts[:2]) if parts[0] == PACKAGE and len(parts) > 2 else parts[0]
        if parts[0] == PACKAGE and len(parts) == 2:
            group = f"{PACKAGE}/*.py, py.typed"
        groups[group] += 1
        sizes[group] += len(data)
    print(f"wheel contents ({len(wheel)} files, {sum(sizes.values()) // 1024} KiB uncompressed):")
    for group in sorted(groups):
        print(f"  {group:<40} {groups[group]:>3} files {sizes[group] // 1024:>5} KiB")
    metadata = sorted(name.split("/", 1)[1] for name in wheel if name.startswith(f"{dist_info}/"))
    print(f"  {dist_info}: {', '.join(metadata)}")


def main(argv: list[str]) -> int:
    repo, wheel_path, sdist_path, wheel_from_sdist_path = (Path(arg) for arg in argv)
    wheel = read_wheel(wheel_path)
    files, links = read_sdist(sdist_path)
    dist_info = check_wheel(wheel, repo)
    check_sdist(files, links, repo)
    compare_package(wheel, files, links)
    compare_wheels(wheel, read_wheel(wheel_from_sdist_path))
    for name in untracked(files, links, repo):
        print(f"note: the sdist holds {name}, which git does not track (commit it or remove it)")
    if problems:
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        return 1
    print(f"sdist: {len(files)} files, {len(links)} link(s) resolved inside it ({sdist_path.name})")
    print(f"wheel from the sdist: the same {len(wheel)} files, byte for byte")
    summary(wheel, dist_info)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
