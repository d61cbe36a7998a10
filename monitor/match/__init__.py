"""Stage *match*: the query language (``query``), text as words (``text``), exact
evaluation (``evaluate``) and all rules at once (``matcher``)."""
