"""Precision and recall of the shipped rules on the outside set (tests/fixtures/rules_eval).

    .venv/bin/python benchmarks/rules/score.py [RULES]      # default: rules/

Runs `newsmon rules test --json` in this process on each split (labels and notes
stripped, as the input format wants) and prints one table row per rule and split, then
each miss and each wrong hit.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

from monitor.cli import main

ROOT = Path(__file__).resolve().parents[2]
SETS = ROOT / "tests" / "fixtures" / "rules_eval"


def hits(rules: Path, items: list[dict[str, object]]) -> set[tuple[str, str]]:
    """(article id, rule id) for every match of the rules on the items."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "items.jsonl"
        path.write_text("".join(
            json.dumps({k: v for k, v in item.items() if k not in ("labels", "note")}) + "\n"
            for item in items))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["rules", "test", str(rules), str(path), "--json"])
    if code != 0:
        raise SystemExit(f"rules test exited {code}")
    return {(row["article"], row["rule"]) for row in map(json.loads, out.getvalue().splitlines())}


def report(rules: Path) -> None:
    print("| split | rule | precision | recall | hits right / wrong / missed |")
    print("|---|---|---:|---:|---|")
    mistakes: list[str] = []
    for split in ("dev", "heldout"):
        lines = (SETS / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        items = [json.loads(line) for line in lines]
        found = hits(rules, items)
        for rule in sorted(items[0]["labels"]):
            right = wrong = missed = 0
            for item in items:
                wanted, got = item["labels"][rule], (item["id"], rule) in found
                right += wanted and got
                wrong += got and not wanted
                missed += wanted and not got
                if wanted != got:
                    what = "missed" if wanted else "wrong"
                    mistakes.append(f"{split} {rule} {what}: {item['id']}: {item['title']}")
            precision = right / (right + wrong) if right + wrong else 1.0
            recall = right / (right + missed) if right + missed else 1.0
            print(f"| {split} | {rule} | {precision:.2f} | {recall:.2f} |"
                  f" {right} / {wrong} / {missed} |")
    print()
    print("\n".join(mistakes))


if __name__ == "__main__":
    report(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "rules")
