"""The psql ops queries (scripts/ops/*.sql): finding them, describing them, running them.

Each file starts with a comment: its first line says what it answers, a `Variables:` line names
the psql variables it needs (`none`, or `name (type)` items separated by commas).
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ledger.db.embedded import binaries_dir
from ledger.db.executor import Executor
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


# What fetch_ops runs in place of psql: the file's one statement, its `:'name'` variables as $n.
@dataclass(frozen=True, slots=True)
class OpsStatement:
    sql: str
    parameters: tuple[str, ...]  # the variable bound to $1, $2, ... in order


DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")
WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*")
# psql's variable names: letters, digits, underscores, any non-ASCII character (psqlscan.l)
QUOTED_VARIABLE = re.compile(r":'(\w+)'")
OTHER_VARIABLE = re.compile(r':(?:"[^"]*"|\{\?[^}]*\}|\w+)')
READ_ONLY_STARTS = {"select", "with"}


def _end_of_block_comment(text: str, start: int, name: str) -> int:
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise OpsError(f"{name}: a /* comment is not closed")


def _end_of_quoted(text: str, start: int, quote: str, name: str, backslashes: bool = False) -> int:
    i = start + 1
    while i < len(text):
        if backslashes and text[i] == "\\":
            i += 2
        elif text[i] == quote:
            if not text.startswith(quote, i + 1):
                return i + 1
            i += 2
        else:
            i += 1
    raise OpsError(f"{name}: a {quote} quote is not closed")


def parse_statement(text: str, name: str) -> OpsStatement:
    """The one statement of an ops file, its psql variables `:'name'` turned into $n; anything
    only psql understands (meta-commands, `:name`, `:"name"`, `:{?name}`), a second statement or
    one that is not a SELECT is refused: guessing what psql would have made of it is not safe."""
    out: list[str] = []
    parameters: list[str] = []
    first_words: list[str] = []  # each statement's, once it has ended
    first_word: str | None = None
    i = 0
    while i < len(text):
        char, end = text[i], i + 1
        piece: str | None = None  # what replaces text[i:end] in the statement
        code = True  # not a comment or white space
        if text.startswith("--", i):
            newline = text.find("\n", i)
            end, code = (len(text) if newline < 0 else newline), False
        elif text.startswith("/*", i):
            end, code = _end_of_block_comment(text, i, name), False
        elif char.isspace():
            code = False
        elif char in "eE" and text.startswith("'", i + 1):  # (a word ending in e was read whole)
            end = _end_of_quoted(text, i + 1, "'", name, backslashes=True)
        elif char in "'\"":
            end = _end_of_quoted(text, i, char, name)
        elif char == "$" and (tag := DOLLAR_TAG.match(text, i)):
            close = text.find(tag[0], tag.end())
            if close < 0:
                raise OpsError(f"{name}: the dollar quote {tag[0]} is not closed")
            end = close + len(tag[0])
        elif char == "\\":
            raise OpsError(f"{name}: a psql meta-command ({text[i:].split()[0]}); fetch_ops runs plain SQL only")
        elif text.startswith("::", i):
            end = i + 2
        elif char == ":" and (variable := QUOTED_VARIABLE.match(text, i)):
            if variable[1] not in parameters:
                parameters.append(variable[1])
            end, piece = variable.end(), f"${parameters.index(variable[1]) + 1}"
        elif char == ":" and (other := OTHER_VARIABLE.match(text, i)):
            raise OpsError(f"{name}: {other[0]!r} is a psql variable fetch_ops does not bind; only :'name'")
        elif (word := WORD.match(text, i)) is not None:
            end = word.end()
        if char == ";":
            if first_word is None:
                raise OpsError(f"{name}: an empty statement")
            first_words.append(first_word)
            first_word = None
        else:
            if code and first_word is None:
                first_word = text[i:end].lower()
            out.append(text[i:end] if piece is None else piece)
        i = end
    if first_word is not None:
        first_words.append(first_word)
    if len(first_words) != 1:
        raise OpsError(f"{name}: {len(first_words)} statements; fetch_ops runs a file of one SELECT")
    if first_words[0] not in READ_ONLY_STARTS:
        raise OpsError(f"{name}: {first_words[0].upper()} is not a SELECT; fetch_ops runs a file of one SELECT")
    return OpsStatement("".join(out).strip(), tuple(parameters))


@functools.cache
def _statement(name: str) -> tuple[OpsQuery, OpsStatement]:
    # read and parsed once per process: the dashboard runs the same files on every page view
    query = find_query(name)
    statement = parse_statement(query.path.read_text(encoding="utf-8"), query.path.name)
    if set(statement.parameters) != set(query.variables):
        raise OpsError(f"{query.path.name}: its -- Variables: line does not name the variables it uses")
    return query, statement


async def fetch_ops(db: Executor, name: str, variables: Mapping[str, str] | None = None) -> list[asyncpg.Record]:
    """The rows of scripts/ops/<name>.sql, the very file psql runs, through asyncpg: each `:'var'`
    is a parameter passed as a str, its type inferred by PostgreSQL as for psql's quoted literal.
    asyncpg encodes the str for that type: uuid, text and numeric take it (every variable of the
    files today); a variable compared with an integer, a date or a timestamp would need the file to
    say `:'var'::text::timestamptz` (the same to psql), else asyncpg refuses it (DataError)."""
    query, statement = _statement(name)
    given = variables or {}
    missing = [variable for variable in statement.parameters if variable not in given]
    if missing:
        raise OpsError(f"{query.name} needs the variable(s) " + ", ".join(missing))
    rows: list[asyncpg.Record] = await db.fetch(statement.sql, *(given[v] for v in statement.parameters))
    return rows
