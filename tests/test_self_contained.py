"""The tests, benchmarks and CI read only what is inside the repository (issue 11): no file there names
a path outside it, so a fresh clone with nothing beside it runs them."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "benchmarks", ".ci")
# Absolute paths into places that exist on the machines of this project but not on a fresh clone's.
# (Written so that this file's own source does not match.)
ABSOLUTE = re.compile(r"(?<![\w.:])/(?:wo" r"rk|sha" r"red|ho" r"me|ro" r"ot|mn" r"t|sr" r"v|da" r"ta|Users)/[\w.\-/]*")
RELATIVE_UP = re.compile(r"(?<![\w.])(?:\.\./)+[\w.\-/]*")
PARENTS = re.compile(r"parents\[(\d+)\]")


def _files():
    for top in SCANNED:
        base = REPO / top
        if not base.exists():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".json"):
                yield path


def _outside(path: Path, target: str) -> bool:
    """Whether ``target`` (a relative path with ``..``) leaves the repository: read from the file's
    folder it must stay inside, and unless it names something that exists there, also read from the
    repository root (scripts run from either)."""
    def inside(p: Path) -> bool:
        return p == REPO or REPO in p.parents

    from_folder = (path.parent / target).resolve()
    if not inside(from_folder):
        return True
    return not from_folder.exists() and not inside((REPO / target).resolve())


def test_no_file_names_a_path_outside_the_repository():
    problems = []
    for path in _files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        rel = path.relative_to(REPO)
        for match in ABSOLUTE.finditer(text):
            problems.append(f"{rel}: absolute path {match.group(0)!r}")
        for match in RELATIVE_UP.finditer(text):
            if _outside(path, match.group(0)):
                problems.append(f"{rel}: relative path {match.group(0)!r} leaves the repository")
        depth = len(rel.parts) - 1  # parents[depth] of this file is the repository root
        for match in PARENTS.finditer(text):
            if int(match.group(1)) > depth:
                problems.append(f"{rel}: Path(...).parents[{match.group(1)}] is above the repository root")
    assert not problems, "\n".join(problems)


def test_the_scan_finds_what_it_looks_for(tmp_path):
    up = "." + "./"  # spelled in pieces so that this file passes its own scan (and any grep for such paths)
    ref = "sha" "red/reference"
    sample = f"ref = '{up}{ref}'; data = '/wo" "rk/shared/x.json'; root = Path(__file__).parents" "[5]"
    assert ABSOLUTE.search(sample) and RELATIVE_UP.search(sample) and PARENTS.search(sample)
    assert _outside(REPO / "tests" / "x.py", up * 2 + ref)
    assert _outside(REPO / "tests" / "x.py", up + ref)  # does not exist: read from the root
    assert not _outside(REPO / "tests" / "x.py", up + "resnet_cli")


def test_ci_runs_readmes_test_command_with_the_deterministic_profile():
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m pytest" in ci and "CI=" in ci
