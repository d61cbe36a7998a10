"""Stage *stories*, what words are common before any article is seen: a prior for
the document frequencies the index learns.

An index that starts empty knows nothing of English: after a hundred articles
``bank``, ``rate`` or ``strike`` weigh almost as much as ``Hryvnia`` or ``ATACMS``,
and two stories on one topic look alike. So the index starts from ``documents``
imaginary articles in which each term occurs as often as in general English
(``wordfreq``'s English frequencies: books, news, the web, subtitles; shipped
with the package, read offline). A term's prior share of articles is
``min(1, words × frequency)``, ``words`` being a typical title + lead length
(40 terms); the learned counts add to it, and soon outweigh it where the news
differs from general English.

Only terms at least as frequent as one in a million words are kept (about
30,000): below that the prior share of 1,000 documents is under 0.04 of an article,
less than the smoothing adds anyway. Words are folded and S-stemmed as the
article's terms are (``terms``), so a term's frequency is its forms' sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from monitor.match.text import fold
from monitor.stories.terms import STOP_WORDS, stem

MIN_FREQUENCY = 1e-6
WORDS_PER_ARTICLE = 40.0
# The share of an article's distinct terms found here below which it is taken for
# another language and gets no prior. English news: 0.67 at the least on the
# labelled sets (names and figures are the rest); made-up or foreign words: near 0.
ENGLISH_ENOUGH = 0.5


@lru_cache(maxsize=1)
def english_shares() -> Mapping[str, float]:
    """Each common English term's expected share of articles (0..1)."""
    from wordfreq import cB_to_freq, get_frequency_list  # loaded once, on first use

    totals: dict[str, float] = {}
    # Buckets of words from the most frequent down, one centibel apart. Read past
    # wordfreq's own cache, which would keep all 320,000 words for the process's life.
    for rank, bucket in enumerate(get_frequency_list.__wrapped__("en", "best")):
        frequency = cB_to_freq(-rank)
        if frequency < MIN_FREQUENCY:
            break
        for word in bucket:
            folded = fold(word)
            if len(folded) < 2 or folded in STOP_WORDS or not folded.isalnum():
                continue
            term = stem(folded)
            totals[term] = totals.get(term, 0.0) + frequency
    return MappingProxyType({term: min(1.0, WORDS_PER_ARTICLE * frequency)
                             for term, frequency in totals.items()})
