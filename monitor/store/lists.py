"""Stage *store*: a list of values as one query parameter, for statements built once.

An expanding ``IN`` renders a placeholder per value on every execution; for the
queries every poll runs (``recall.py``, ``Nodes.release_all``) that rendering cost
more than the database's work. Here a list is one parameter whatever its length:
a JSON array read with ``json_each`` on SQLite, an array compared with ``= ANY``
on PostgreSQL. Both use the column's index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import ColumnElement, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY


def among(column: ColumnElement[str], name: str, postgresql: bool) -> ColumnElement[bool]:
    """``column IN`` the list given as the parameter ``name`` (``as_parameter``)."""
    if postgresql:
        return column == any_(bindparam(name, type_=ARRAY(String)))
    values = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(values.c.value))


def as_parameter(values: Sequence[str], postgresql: bool) -> str | list[str]:
    """The value of an ``among`` parameter."""
    return list(values) if postgresql else json.dumps(list(values))
