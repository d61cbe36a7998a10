"""`newsmon migrate`: move a node's whole state to another database (``store/copy.py``)."""

from __future__ import annotations

import argparse

from monitor.config import ClusterSettings
from monitor.store import Store
from monitor.store.copy import copy_state


def migrate(args: argparse.Namespace) -> int:
    source = Store(args.source).open()
    try:
        target = Store(args.target).open()
        try:
            report = copy_state(source, target, replace=args.replace,
                                alive_within=ClusterSettings().lease)
        finally:
            target.close()
    finally:
        source.close()
    print("migrated: " + ", ".join(f"{count} {table}" for table, count in report.rows.items()))
    return 0
