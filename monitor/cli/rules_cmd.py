"""`newsmon rules check` (a linter for rule files) and `newsmon rules test` (explain matches)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from monitor.config import find_config_path, load_settings
from monitor.errors import NewsmonError, RuleError
from monitor.match.matcher import article_document, evaluate_rule, failing_examples
from monitor.match.printer import to_text
from monitor.rules.load import collect_rules, load_rules
from monitor.rules.model import Rule


def check(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths] or _default_rule_paths(args.config)
    rules, errors, warnings = collect_rules(paths)
    for rule in rules:
        errors.extend(_example_errors(rule))
    for problem in sorted([*errors, *warnings], key=lambda e: (e.path, e.line, e.col)):
        print(problem)
    summary = (f"{len(rules)} rules checked: {len(errors)} errors, {len(warnings)} warnings")
    print(summary, file=sys.stderr)
    return 1 if errors else 0


def _default_rule_paths(config: str | None) -> list[Path]:
    path = find_config_path(config)
    if config or path.exists():
        return list(load_settings(path).rules.paths)
    return [Path("rules")]


def _example_errors(rule: Rule) -> list[RuleError]:
    out = []
    for example, expected in failing_examples(rule):
        verb = "should match but does not" if expected else "should not match but does"
        out.append(RuleError(example.origin.path, example.origin.line, example.origin.col,
                             f"example {verb} rule {rule.id!r}: {example.label!r}"))
    return out


def test(args: argparse.Namespace) -> int:
    from monitor.cli.inputs import read_articles

    rules = load_rules([Path(args.rules)])
    try:
        articles = read_articles(Path(args.input))
    except NewsmonError as exc:
        print(f"newsmon: {exc}", file=sys.stderr)
        return 2
    for item in articles:
        doc = article_document(item.article)
        lines: list[str] = []
        for rule in rules.rules:
            if not _applies(rule, item.article.source, item.article.language):
                continue
            outcome = evaluate_rule(rule, doc)
            if outcome.matched and args.json:
                print(json.dumps({"article": item.id, "rule": rule.id,
                                  "spans": [item.raw_span(s).to_json() for s in outcome.spans]},
                                 ensure_ascii=False))
            elif outcome.matched:
                lines.append(f"  MATCH {rule.id} [{rule.severity}] {rule.title}")
                for span in outcome.spans:
                    raw = doc.field(span.field).raw
                    lines.append(f"      {span.field}: {_highlight(raw, span.start, span.end)}")
            elif args.explain and not args.json:
                lines.append(f"  no match {rule.id}: {_why(rule, outcome.failed)}")
        if lines:
            print(f"{item.id}: {item.article.title}")
            print("\n".join(lines))
    return 0


def _applies(rule: Rule, source: str, language: str | None) -> bool:
    """Source and language filters apply only when the input says what they are."""
    if source and not rule.watches_source(source):
        return False
    return not (language and rule.languages and language not in rule.languages)


def _why(rule: Rule, failed: str | None) -> str:
    if failed is None:
        return "matched"
    clause = _clause_text(rule, failed)
    if failed.startswith("none"):
        return f"excluded by {failed}: {clause}"
    return f"{failed} did not match: {clause}"


def _clause_text(rule: Rule, failed: str) -> str:
    """The failed clause as query text, so the author sees which query to look at."""
    if failed == "query" and rule.query is not None:
        return to_text(rule.query)
    if failed == "any":
        return " | ".join(map(to_text, rule.any))
    key, _, index = failed.partition("[")
    clauses = {"all": rule.all, "none": rule.none}[key]
    return to_text(clauses[int(index.rstrip("]"))])


def _highlight(text: str, start: int, end: int, context: int = 50) -> str:
    left = max(0, start - context)
    right = min(len(text), end + context)
    before = ("…" if left else "") + text[left:start]
    after = text[end:right] + ("…" if right < len(text) else "")
    return " ".join(f"{before}[{text[start:end]}]{after}".split())
