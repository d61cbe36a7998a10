"""Stage *stories*: give every new article a story id, so one story told by many
outlets makes one alert (``plan`` dedupes per rule and story).

An article joins the story of its most similar recent article when the two are
similar enough (tf-idf cosine over title and lead, idf starting from general
English word frequencies: ``prior``, decayed with the time between them, within
a window either side: ``index``); otherwise it starts a new story
whose id is its own identity (stable, unique, fits the store's ``story_id``).

How the daemon uses it: one ``StoryIndex`` for the life of the process; the first
time a poll has new articles, ``rebuild`` it from the stored articles of the last
window with their stored story ids (``shared.py``); then ``assign`` each fetched
batch of new articles (time order inside) before it is stored. Ids once given are
never changed.

Pure: no I/O, no database, no clock (times come from the articles).
"""

from __future__ import annotations

from monitor.stories.index import Match, StoryIndex, StorySettings
from monitor.stories.terms import STOP_WORDS, stem, story_terms

__all__ = ["STOP_WORDS", "Match", "StoryIndex", "StorySettings", "stem", "story_terms"]
