"""docs/coverage.md stays true: every problem spec it names exists and generates, and its counts add up.

The page has one table per source file, one row per calculation: `| N.M | calculation | where | type:options |
covered | note |`. Every backticked span in a row's type and note columns is a spec, `type` or
`type:name=value,…`, read with ProblemSpec.parse (unknown types, options and values are refused there) and
generated with the registry's make_problem, so the page cannot name a type or option that does not exist.
Outside the tables, any backticked span that looks like `type:name=value` is checked the same way.
The covered column is yes, partly or no; a `no` row names no spec (—) and the others name at least one;
the summary line and the per-source table repeat the rows' counts.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from generator.core.registry import make_problem
from generator.documents.sheet import ProblemSpec, problem_seed

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "coverage.md"
TEXT = PAGE.read_text(encoding="utf-8")
ROW = re.compile(r"^\|\s*(\d)\.(\d+)\s*\|(.*)\|\s*$")
SPAN = re.compile(r"`([^`]+)`")
SPEC_LIKE = re.compile(r"^[a-z][a-z0-9_]*:[a-z_0-9]+=\S+$")
STATUSES = ("yes", "partly", "no")


def rows() -> list[dict]:
    """Every calculation row: its id, source digit, cells and specs."""
    found = []
    for number, line in enumerate(TEXT.splitlines(), 1):
        match = ROW.match(line)
        if not match:
            continue
        cells = [cell.strip() for cell in match.group(3).split("|")]
        assert len(cells) == 5, f"coverage.md:{number}: expected 6 columns, found {len(cells) + 1}: {line}"
        calculation, where, types, status, note = cells
        found.append({"id": f"{match.group(1)}.{match.group(2)}", "source": match.group(1), "line": number,
                      "calculation": calculation, "where": where, "types": types, "status": status,
                      "specs": SPAN.findall(types), "note_specs": SPAN.findall(note)})
    return found


ROWS = rows()


def named_specs() -> list[str]:
    """Every distinct spec the page names: in the tables' type and note columns, and spec-like spans elsewhere."""
    specs = [s for row in ROWS for s in row["specs"] + row["note_specs"]]
    outside = [line for line in TEXT.splitlines() if not ROW.match(line)]
    specs += [s for line in outside for s in SPAN.findall(line) if SPEC_LIKE.match(s)]
    return sorted(set(specs))


def test_the_page_has_rows_for_every_source():
    assert len(ROWS) >= 100
    assert {row["source"] for row in ROWS} == {"0", "1", "2", "3", "4"}
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids)), "a row number is used twice"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["id"])
def test_each_row_is_complete(row):
    assert row["status"] in STATUSES, f"coverage.md:{row['line']}: covered must be one of {STATUSES}"
    assert row["calculation"] and row["where"], f"coverage.md:{row['line']}: a row says what and where"
    if row["status"] == "no":
        assert row["types"] == "—" and not row["specs"], f"coverage.md:{row['line']}: a 'no' row names no spec"
    else:
        assert row["specs"], f"coverage.md:{row['line']}: a covered or partly row names its spec"


@pytest.mark.parametrize("spec", named_specs())
def test_every_spec_parses_and_generates(spec):
    parsed = ProblemSpec.parse(spec)
    problem = make_problem(parsed.type, parsed.options, problem_seed(1, 1, parsed.type))
    assert problem.parts, spec


def test_the_counts_add_up():
    total = Counter(row["status"] for row in ROWS)
    summary = re.search(r"\*\*Summary: (\d+) calculations: (\d+) covered, (\d+) partly, (\d+) not covered\.\*\*", TEXT)
    assert summary, "the summary line is missing or reworded"
    assert [int(n) for n in summary.groups()] == [len(ROWS), total["yes"], total["partly"], total["no"]]
    per_source = re.findall(r"^\| \[(\d{3}) [^]]*\]\(#[^)]*\) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", TEXT, re.M)
    assert [s for s, *_ in per_source] == ["000", "001", "002", "003", "004"]
    for source, count, yes, partly, no in per_source:
        mine = [row for row in ROWS if row["source"] == source[-1]]
        statuses = Counter(row["status"] for row in mine)
        assert [int(count), int(yes), int(partly), int(no)] == [len(mine), statuses["yes"], statuses["partly"],
                                                                statuses["no"]], f"source {source}"
