"""Stage *store*: a source's state as the poll sees it, and how states are written.

A state is read with the claimed sources' (``Store.source_states_for``) and written
with the poll's articles (``Store.save_batch``) or with the polls that end together
(``Nodes.release_all``). Leases and due times are ``Nodes``' business, not a state's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime

from sqlalchemy import RowMapping
from sqlalchemy.dialects import sqlite


@dataclass(frozen=True, slots=True)
class SourceState:
    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    next_poll_at: datetime | None = None
    articles_seen: int = 0
    feed_url: str | None = None  # discovered from the page ``url`` names
    failing_since: datetime | None = None
    last_new_at: datetime | None = None
    gap_mean: float | None = None
    gaps_seen: int = 0
    health_alert: str | None = None
    # The fingerprints of the last fetched feed's entries by their raw texts
    # (``entry_texts``: what was normalised once need not be again).
    entry_texts: str | None = None
    # Not a column: the ``entry_texts`` the store holds (as read). A poll of a feed that
    # has not changed (a 304 most of all) leaves them as they were: they are not
    # written again with the rest of the state (``state_rows``).
    stored_texts: str | None = field(default=None, compare=False, repr=False)

    @property
    def fetch_url(self) -> str:
        return self.feed_url or self.url

    @classmethod
    def from_row(cls, row: RowMapping) -> SourceState:
        """The poll's view of a ``sources`` row."""
        return cls(**{name: row[name] for name in COLUMNS}, stored_texts=row["entry_texts"])


COLUMNS = tuple(f.name for f in fields(SourceState) if f.name != "stored_texts")


def configured_state(name: str, url: str, row: RowMapping | None) -> SourceState:
    """A source's stored state, for the URL the configuration gives it now."""
    if row is None:
        return SourceState(name=name, url=url)
    state = SourceState.from_row(row)
    if state.url != url:  # the feed moved: its validators belong to the old URL
        return SourceState(name=name, url=url, last_success_at=state.last_success_at,
                           articles_seen=state.articles_seen, last_new_at=state.last_new_at,
                           gap_mean=state.gap_mean, gaps_seen=state.gaps_seen,
                           stored_texts=state.stored_texts)
    return state


def state_rows(states: Sequence[SourceState]) -> Iterator[tuple[bool, list[dict[str, object]]]]:
    """The states as rows to write, in name order, those with new ``entry_texts`` apart
    from those whose stored ones stay: (whether the texts are written, rows)."""
    ordered = sorted(states, key=lambda state: state.name)
    for texts_changed in (True, False):
        rows = [{name: getattr(state, name) for name in COLUMNS} for state in ordered
                if (state.entry_texts != state.stored_texts) is texts_changed]
        if rows:
            yield texts_changed, rows


def states_upsert(insert: sqlite.Insert, texts_changed: bool) -> sqlite.Insert:
    """The statement ``state_rows`` are written with (``insert``: into ``sources``)."""
    return insert.on_conflict_do_update(
        index_elements=[insert.table.c.name],
        set_={name: insert.excluded[name] for name in COLUMNS
              if name != "name" and (texts_changed or name != "entry_texts")})
