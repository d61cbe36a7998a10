"""Stage *store*: the state database (articles, hits, outbox, sources)."""

from monitor.store.store import BatchOutcome, NewArticle, OutboxCount, SourceState, Store

__all__ = ["BatchOutcome", "NewArticle", "OutboxCount", "SourceState", "Store"]
