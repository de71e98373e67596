"""The documentation's promises that are easy to break: a short README, links that resolve,
and code comments that say why rather than when (no commit hashes, no issue numbers)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, SCRIPTS_DIR, TESTS_DIR

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
PAGES = sorted([README, *DOCS.rglob("*.md")])
# "A page a person reads in five minutes."
README_MAX_LINES = 250
# [text](target): the target up to a closing parenthesis, without a scheme.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lowercase, punctuation dropped, spaces to -."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    found: set[str] = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        name, number = base, 1
        while name in found:  # GitHub numbers repeated headings: x, x-1, x-2
            name, number = f"{base}-{number}", number + 1
        found.add(name)
    return found


def relative_links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)  # http:, mailto: ...
    ]


def test_the_readme_is_a_page_a_person_reads_in_five_minutes() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {(README.parent / target.split("#")[0]).resolve() for target in relative_links(README)}
    missing = [page.name for page in PAGES if page != README and page.resolve() not in linked]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no such heading")
    assert broken == []


def test_the_slug_is_githubs() -> None:
    assert slug("Exit statuses") == "exit-statuses"
    assert slug('What "used" means: three definitions') == "what-used-means-three-definitions"
    assert slug("`--compare FROM TO`") == "--compare-from-to"


# --- Comments say why -----------------------------------------------------------------

SOURCES = sorted([*SCRIPTS_DIR.rglob("*.py"), *TESTS_DIR.rglob("*.py")])
# This file names the patterns it looks for.
CHECKED = [path for path in SOURCES if path != Path(__file__).resolve()]
HISTORY = re.compile(r"\bthe seed\b|\bseed's\b|\bissues? #?[0-9]+\b", re.IGNORECASE)


def test_no_source_refers_to_the_seed_or_to_issue_numbers() -> None:
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in CHECKED
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if HISTORY.search(line)
    ]
    assert found == []


def commit_prefixes() -> set[str]:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs git and the repository's history")
    out = subprocess.run(
        ["git", "rev-list", "--all"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        pytest.skip(f"git rev-list failed: {out.stderr.strip()}")
    return {commit[:7] for commit in out.stdout.split()}


def test_no_source_quotes_a_commit_hash() -> None:
    prefixes = commit_prefixes()
    word = re.compile(r"\b[0-9a-f]{7,40}\b")
    found = [
        f"{path.relative_to(REPO_ROOT)}: {match}"
        for path in [*CHECKED, *PAGES]
        for match in word.findall(path.read_text(encoding="utf-8"))
        if match[:7] in prefixes
    ]
    assert found == []
