"""Reading back what --prometheus-textfile writes: a parser of the text exposition format
(as much of it as the analyses write), and `promtool check metrics` on every file a test
reads, so that no textfile of the tests goes unchecked by the real tool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROMTOOL = shutil.which("promtool")
INSTALL_HINT = "needs promtool: apt-get install prometheus (.ci/run installs it)"
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=INSTALL_HINT)

Key = tuple[str, frozenset[tuple[str, str]]]
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def unescape(value: str) -> str:
    return re.sub(r"\\[\\\"n]", lambda match: _ESCAPES[match.group(0)], value)


def parse_labels(text: str) -> frozenset[tuple[str, str]]:
    labels = []
    at = 0
    while at < len(text):
        match = _LABEL.match(text, at)
        assert match is not None, f"bad labels at {text[at:]!r}"
        labels.append((match.group(1), unescape(match.group(2))))
        at = match.end()
    return frozenset(labels)


def parse(text: str) -> dict[Key, float]:
    """Every sample by (name, labels); each family must have HELP and TYPE before it."""
    declared: set[str] = set()
    samples: dict[Key, float] = {}
    for line in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(line)
        assert match is not None, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        assert name in declared, f"{name} has no TYPE line before it"
        key = (name, parse_labels(labels or ""))
        assert key not in samples, f"duplicate series {key}"
        samples[key] = float(value)
    return samples


def promtool_problems(text: str) -> str:
    """What `promtool check metrics` says of the text (lint included); empty when clean."""
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return (done.stdout + done.stderr).strip() + (
        "" if done.returncode == 0 else f" ({done.returncode})"
    )


def read_textfile(path: Path) -> dict[Key, float]:
    """A written textfile's samples, after promtool found no problem in it (when promtool
    is installed: the tests that need it are skipped, with INSTALL_HINT, where not)."""
    text = path.read_text(encoding="utf-8")
    if PROMTOOL is not None:
        assert promtool_problems(text) == "", path
    return parse(text)


def value(samples: dict[Key, float], name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


def names(samples: dict[Key, float]) -> set[str]:
    return {name for name, _ in samples}
