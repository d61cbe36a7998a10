"""`newsmon rules review RULE`: ask about a rule's recent hits and near misses, one by one,
and keep the answers as the rule's examples.

Reads the configuration, the rules and the store; picks the articles with
``monitor.review``; asks on stdout and reads answers from stdin, line by line
(a pipe works as well as a terminal); writes only the rule's own YAML file, and
only its examples (``monitor.rules.edit``), after the last answer. Ctrl-C
writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from monitor.cli.backtest_cmd import BATCH, plural, window
from monitor.config import find_config_path, load_settings
from monitor.match.matcher import article_document, failing_examples
from monitor.records import Article
from monitor.review import ReviewItem, answer_target, highlight, parse_answer, select_for_review
from monitor.rules.edit import Addition, add_examples
from monitor.rules.load import load_rules
from monitor.rules.model import Rule
from monitor.store import Store

PROMPT = "Is the rule right? [r]ight, [w]rong, [s]kip, [q]uit: "
FIELD_ORDER = ("title", "summary", "content", "author", "url", "source", "lang")


def review(args: argparse.Namespace) -> int:
    settings = load_settings(find_config_path(args.config))
    rules = load_rules(settings.rules.paths).by_id()
    rule = rules.get(args.rule)
    if rule is None:
        known = ", ".join(sorted(rules)) or "none"
        print(f"newsmon: no rule {args.rule!r} in the configured rules (known: {known})",
              file=sys.stderr)
        return 2
    since: timedelta = args.since
    store = Store(settings.storage.url).open()
    try:
        selection = select_for_review(rule, _articles(store, datetime.now(UTC) - since))
    finally:
        store.close()
    out = sys.stdout
    items = [*selection.hits, *selection.near_misses]
    known = (f" ({selection.known} already among its examples)" if selection.known else "")
    print(f"{rule.id}: {plural(len(selection.hits), 'hit')} and"
          f" {plural(len(selection.near_misses), 'near miss', 'near misses')} in"
          f" {plural(selection.scanned, 'article')} of {window(since)}{known}.", file=out)
    if not items:
        return 0
    try:
        additions = ask(rule, items, sys.stdin, out, _marker(out))
    except KeyboardInterrupt:
        print("\nInterrupted: no changes written.", file=out)
        return 0
    if not additions:
        print("No examples to add.", file=out)
        return 0
    return _save(rule, additions, out)


def _articles(store: Store, start: datetime) -> Iterator[Article]:
    for batch in store.articles_since(start, BATCH):
        yield from batch


def ask(rule: Rule, items: list[ReviewItem], answers: TextIO, out: TextIO,
        mark: Callable[[str], str]) -> list[Addition]:
    """Show each item and read an answer per line; end of input is like [q]uit."""
    additions: list[Addition] = []
    for number, item in enumerate(items, start=1):
        print(file=out)
        for line in describe(rule, item, number, len(items), mark):
            print(line, file=out)
        while True:
            print(PROMPT, end="", file=out, flush=True)
            line = answers.readline()
            if not answers.isatty():
                print(line.strip(), file=out)  # show piped answers as if typed
            answer = parse_answer(line) if line else "quit"
            if answer is not None:
                break
            print(f"Please answer r, w, s or q (not {line.strip()!r}).", file=out)
        if answer == "quit":
            break
        target = answer_target(item.kind, answer)
        if target is not None:
            additions.append(Addition(target, item.headline))
            print(f"  -> examples.{target}", file=out)
    return additions


def describe(rule: Rule, item: ReviewItem, number: int, total: int,
             mark: Callable[[str], str]) -> list[str]:
    """The lines that present one item: what the rule did, the article, what matched."""
    a = item.article
    if item.kind == "hit":
        head = f"[{number}/{total}] HIT: {rule.id} matches this article"
    else:
        how = "" if item.closeness >= 1 else f" ({round(100 * item.closeness)}% matched)"
        head = (f"[{number}/{total}] NEAR MISS{how}: {rule.id} does not match this article:"
                f" {item.reason}")
    when = a.when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [head, f"  {item.headline}",
             "  " + " · ".join(x for x in (a.source, when, a.url or "") if x)]
    doc = article_document(a)
    for name in FIELD_ORDER:
        spans = [s for s in item.spans if s.field == name]
        if spans:
            raw = doc.field(name).raw
            context = len(raw) if name == "title" else 50
            lines.append(f"  {name}: {highlight(raw, spans, mark, context)}")
    return lines


def _marker(out: TextIO) -> Callable[[str], str]:
    if out.isatty() and "NO_COLOR" not in os.environ:
        return lambda text: f"\x1b[1m{text}\x1b[0m"
    return lambda text: f"[{text}]"


def _save(rule: Rule, additions: list[Addition], out: TextIO) -> int:
    path = rule.origin.path
    text = path.read_bytes().decode("utf-8")
    edit = add_examples(text, rule.id, additions)
    for duplicate in edit.duplicates:
        print(f"Already an example, not added again: {duplicate.text!r}", file=out)
    if edit.added:
        _write(path, edit.text)
        print(f"Added {plural(len(edit.added), 'example')} to {path}:", file=out)
        for addition in edit.added:
            print(f"  examples.{addition.target}: {addition.text}", file=out)
    reloaded = load_rules([path]).by_id()[rule.id]
    failing = list(failing_examples(reloaded))
    count = len(reloaded.examples_match) + len(reloaded.examples_no_match)
    if not failing:
        print(f"All {count} examples of {rule.id} pass.", file=out)
        return 0
    print(f"{len(failing)} of {plural(count, 'example')} of {rule.id} fail"
          " (change the rule, or the examples, until `newsmon rules check` passes):", file=out)
    for example, expected in failing:
        verb = "should match but does not" if expected else "should not match but does"
        print(f"  {example.origin}: {verb}: {example.label!r}", file=out)
    return 0


def _write(path: Path, text: str) -> None:
    """Replace the file in one step (a crash leaves the old or the new file, never half)."""
    mode = path.stat().st_mode
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
        os.chmod(temp, mode & 0o7777)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
