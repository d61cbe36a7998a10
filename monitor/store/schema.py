"""The state database's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Uniqueness decides duplicates, not application code: an article identity is
stored once (its link key and content fingerprint find it again under another
identity: ``identity.recognise``); a hit once per (article, rule); an alert once
per (rule, dedupe key, channel), where the dedupe key is the story id (or the
article identity for ``dedupe: {scope: article}``).

Changing this file means adding a migration in ``migrate.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every back-end."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite's rowid alias must be INTEGER

metadata = MetaData()

meta = Table(
    "newsmon_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

sources = Table(
    "sources",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("url", Text, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_attempt_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("next_poll_at", UTCDateTime),
    Column("articles_seen", BigInteger, nullable=False, default=0),
    # version 3: the feed found on the page the source's URL names, and health
    Column("feed_url", Text),
    Column("failing_since", UTCDateTime),  # start of the current run of failures
    Column("last_new_at", UTCDateTime),  # when a poll last found a new item
    Column("gap_mean", Float),  # usual seconds between new items (moving average)
    Column("gaps_seen", Integer, nullable=False, server_default="0"),
    Column("health_alert", String(16)),  # failing | silent: alerted, not yet recovered
    # version 6: shared by several nodes. A node polls a source only while it holds the
    # lease (lease_owner until lease_until); due_at is when the next poll is due, for
    # every node; last_node polled it last.
    Column("lease_owner", String(200)),
    Column("lease_until", UTCDateTime),
    Column("due_at", UTCDateTime),
    Column("last_node", String(200)),
    # version 8: the last fetched feed's entries, raw-text digest to fingerprint
    # (``entry_texts``)
    Column("entry_texts", Text),
    Index("ix_sources_due", "due_at"),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("identity", String(64), nullable=False, unique=True),
    Column("source", String(200), nullable=False),
    Column("guid", Text),
    Column("url", Text),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("published_at", UTCDateTime),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("language", String(16)),
    Column("story_id", String(64), nullable=False),
    # version 7: to recognise an article by its canonical link or its text (another
    # guid, another source), and another source's copy of an article
    Column("link_key", String(32)),  # a hash of the canonical URL
    Column("fingerprint", String(32)),  # a hash of the title and text as the feed gave them
    Column("duplicate_of", Id, ForeignKey("articles.id", ondelete="SET NULL")),
    Index("ix_articles_story", "story_id"),
    Index("ix_articles_fetched", "fetched_at"),
    Index("ix_articles_link_key", "link_key"),
    Index("ix_articles_fingerprint", "fingerprint"),
)

# version 5: the identity a feed item had before its page named the article's canonical
# link (full_text), so the item is recognised next time without fetching its page again.
article_aliases = Table(
    "article_aliases",
    metadata,
    Column("alias", String(64), primary_key=True),
    Column("identity", String(64), nullable=False),
)

hits = Table(
    "hits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("article_id", Id, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", String(200), nullable=False),
    Column("spans", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("article_id", "rule_id", name="uq_hits_article_rule"),
    Index("ix_hits_rule_created", "rule_id", "created_at"),
)

# status: pending -> sending -> sent | failed; held = waits for the channel's digest.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(200), nullable=False),
    Column("rule_id", String(200), nullable=False),
    Column("dedupe_key", String(200), nullable=False),
    Column("article_id", Id, ForeignKey("articles.id", ondelete="SET NULL")),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    # version 2
    Column("kind", String(16), nullable=False, server_default="alert"),  # alert | follow_up
    Column("parent_id", Id),  # the alert a follow-up follows
    Column("remote_id", Text),  # the channel's id of the sent message (Slack ts, Message-ID)
    Column("in_digest", Boolean, nullable=False, server_default=false()),
    Column("digested_at", UTCDateTime),
    # version 4: the silence an alert was planned under (held for a digest, or dropped)
    Column("silence_id", Id),
    UniqueConstraint("rule_id", "dedupe_key", "channel", name="uq_outbox_rule_key_channel"),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_channel_digest", "channel", "in_digest"),
)

# version 6: the nodes sharing this database; a node is alive while it heartbeats.
nodes = Table(
    "nodes",
    metadata,
    Column("id", String(200), primary_key=True),  # host:pid:random
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

# version 6: jobs that one node at a time may run (a channel's digest), leased like sources.
job_leases = Table(
    "job_leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("until", UTCDateTime, nullable=False),
)

# A channel that failed permanently (bad credentials, unknown channel) is not sent to
# until its settings change (fingerprint) or `newsmon channels test` succeeds.
channel_state = Table(
    "channel_state",
    metadata,
    Column("channel", String(200), primary_key=True),
    Column("failing_since", UTCDateTime),
    Column("error", Text),
    Column("fingerprint", String(64)),
    Column("last_sent_at", UTCDateTime),
    Column("last_digest_at", UTCDateTime),
)


# version 4. A time-bounded mute of one rule, source or channel, shared by every node.
# Alerts planned while one is active are filed with its id: held for the channel's
# digest (``action`` "digest") or recorded as ``silenced`` and not sent ("drop").
silences = Table(
    "silences",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("target", String(16), nullable=False),  # rule | source | channel
    Column("name", String(200), nullable=False),
    Column("action", String(16), nullable=False),  # digest | drop
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),  # ended early by `newsmon silence remove`
    Index("ix_silences_ends", "ends_at"),
)
