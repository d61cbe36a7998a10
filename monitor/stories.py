"""Stage *stories*: give every new article a story id.

Not clustering yet: until near-duplicate detection lands, every article is its
own story and its story id is its identity. Alert deduplication already keys on
the story id, so clustering will change who shares an id, not how dedupe works.

Pure: no I/O.
"""

from __future__ import annotations

from monitor.records import Article


def assign_story(article: Article) -> str:
    return article.identity
