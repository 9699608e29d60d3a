"""The psql ops queries (scripts/ops/*.sql): finding them, describing them, running them.

Each file starts with a comment: its first line says what it answers, a `Variables:` line names
the psql variables it needs (`none`, or `name (type)` items separated by commas).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ledger.db.embedded import binaries_dir
from ledger.db.pool import psql_environment

VARIABLES_LINE = re.compile(r"^--\s*Variables:\s*(?P<spec>.*)$", re.MULTILINE)


class OpsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class OpsQuery:
    name: str
    path: Path
    description: str
    variables: tuple[str, ...]


def ops_dir() -> Path:
    """The packaged copy in an installed wheel, else the repository's scripts/ops."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "ops_queries", here.parent / "scripts" / "ops"):
        if candidate.is_dir():
            return candidate
    raise OpsError(f"no ops queries next to {here}")


def _describe(path: Path) -> OpsQuery:
    text = path.read_text(encoding="utf-8")
    first = text.splitlines()[0] if text else ""
    if not first.startswith("--"):
        raise OpsError(f"{path.name}: the first line must be a comment saying what the query answers")
    match = VARIABLES_LINE.search(text)
    if match is None:
        raise OpsError(f"{path.name}: no '-- Variables:' line")
    spec = match["spec"].strip()
    names = () if spec == "none" else tuple(item.split("(")[0].strip() for item in spec.split(","))
    return OpsQuery(path.stem, path, first.lstrip("- ").strip(), names)


def list_queries(directory: Path | None = None) -> list[OpsQuery]:
    return [_describe(path) for path in sorted((directory or ops_dir()).glob("*.sql"))]


def find_query(name: str, directory: Path | None = None) -> OpsQuery:
    for query in list_queries(directory):
        if query.name == name:
            return query
    known = ", ".join(q.name for q in list_queries(directory))
    raise OpsError(f"no ops query named {name!r}; known: {known}")


def psql_command(url: str, query: OpsQuery, variables: dict[str, str], *extra: str) -> tuple[list[str], dict[str, str]]:
    """psql's argv (no password in it) and its environment (PGPASSWORD, when the URL has one)."""
    missing = [name for name in query.variables if name not in variables]
    if missing:
        raise OpsError(f"{query.name} needs " + ", ".join(f"--var {name}=..." for name in missing))
    bare, env = psql_environment(url)
    command = [str(binaries_dir() / "psql"), bare, "-X", "-v", "ON_ERROR_STOP=1"]
    for name, value in variables.items():
        command += ["-v", f"{name}={value}"]
    return [*command, *extra, "-f", str(query.path)], env


def run_query(url: str, query: OpsQuery, variables: dict[str, str], *extra: str) -> int:
    command, env = psql_command(url, query, variables, *extra)
    return subprocess.call(command, env=env)
