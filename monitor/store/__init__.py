"""Stage *store*: the state database (articles, hits, outbox, sources)."""

from monitor.store.channel_health import ChannelHealth, ChannelState
from monitor.store.outbox import Outbox
from monitor.store.outbox_counts import OutboxCount
from monitor.store.states import SourceState
from monitor.store.store import BatchOutcome, NewArticle, Store

__all__ = ["BatchOutcome", "ChannelHealth", "ChannelState", "NewArticle", "Outbox", "OutboxCount",
           "SourceState", "Store"]
