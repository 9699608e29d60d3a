"""Every project SQLSTATE raised by the SQL has its exception class."""

from __future__ import annotations

import re

from ledger.db.migrations import discover
from ledger.errors import BY_SQLSTATE, LedgerError


def test_every_sqlstate_the_migrations_raise_is_mapped():
    raised = {code for m in discover() for code in re.findall(r"ERRCODE = '(\w+)'", m.sql)}

    assert raised, "the migrations raise project errors"
    assert raised <= set(BY_SQLSTATE), raised - set(BY_SQLSTATE)
    assert all(code.startswith("LG") for code in raised), "never bare P0001 or a PostgreSQL class"


def test_each_sqlstate_has_one_class_with_its_own_code():
    classes = list(BY_SQLSTATE.values())
    assert len({cls.code for cls in classes}) == len(classes)
    assert all(issubclass(cls, LedgerError) for cls in classes)
