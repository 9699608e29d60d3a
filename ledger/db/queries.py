"""Named SQL statements: `sql/queries/<name>.sql`, one statement per file, loaded by name.

Where SQL lives (docs/development.md, "Where SQL lives"): a statement that is one call of one function (a
stored function of sql/migrations, or one built into PostgreSQL) stays as a one-liner in its one
typed wrapper, since the function is its home; every other statement is a file here, read by
`query("name")`. The one exception is an operator's edit (ledger/db/edits.py), whose SET list is
built from allow-listed column names: its tiny dynamic part stays in Python.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

QUERY_NAME = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")


class QueryError(LookupError):
    pass


def queries_dir() -> Path:
    """The packaged copy in an installed wheel, else the repository's sql/ (editable installs),
    found as ledger/db/migrations.py's migrations_dir finds the migrations."""
    package = Path(__file__).resolve().parent.parent  # ledger/
    for candidate in (package / "sql" / "queries", package.parent / "sql" / "queries"):
        if candidate.is_dir():
            return candidate
    raise QueryError(f"no sql/queries directory in or next to {package}")


@functools.cache
def all_queries() -> dict[str, str]:
    """Every named statement, read once: name -> text (its leading comment included)."""
    found: dict[str, str] = {}
    for path in sorted(queries_dir().glob("*.sql")):
        if not QUERY_NAME.match(path.stem):
            raise QueryError(f"{path.name}: query files are named lower_snake_case.sql")
        text = path.read_text(encoding="utf-8")
        if not text.startswith("--"):
            raise QueryError(f"{path.name}: the first line must be a comment saying what the statement returns")
        found[path.stem] = text
    return found


def query(name: str) -> str:
    """The text of sql/queries/<name>.sql; an unknown name is a QueryError naming the directory."""
    try:
        return all_queries()[name]
    except KeyError:
        raise QueryError(f"no query {name!r}: there is no {name}.sql in {queries_dir()}") from None
