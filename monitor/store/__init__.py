"""Stage *store*: the state database (articles, hits, outbox, sources)."""

from monitor.store.outbox import ChannelState, Outbox, OutboxCount
from monitor.store.store import BatchOutcome, NewArticle, SourceState, Store

__all__ = ["BatchOutcome", "ChannelState", "NewArticle", "Outbox", "OutboxCount", "SourceState",
           "Store"]
