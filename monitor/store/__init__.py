"""Stage *store*: the state database (articles, hits, outbox, sources)."""

from monitor.store.outbox import ChannelState, Outbox, OutboxCount
from monitor.store.states import SourceState
from monitor.store.store import BatchOutcome, NewArticle, Store

__all__ = ["BatchOutcome", "ChannelState", "NewArticle", "Outbox", "OutboxCount", "SourceState",
           "Store"]
