"""The README's five-line analysis of a phase-diagram sweep (section "Python") is run as
it stands, from a directory where experiments/ is the repository's, and what it prints is
the table the README shows. A grid point whose extra feature sits within 0.05 of a phase
threshold (||W|| near 0.5, superposition near 0.25) may print either letter: which side
of the line it lands on is not a fact the README claims."""
from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

from tmslab import geometry

REPO = Path(__file__).resolve().parents[2]


def readme_blocks() -> tuple[str, str]:
    """(the Python block after 'analysed in five lines', the output block after 'It prints')"""
    text = (REPO / "README.md").read_text()
    section = text[text.index("\n## Python\n"):]
    code = re.search(r"analysed in five lines.*?```python\n(.*?)```", section, re.S)
    out = re.search(r"It prints.*?```\n(.*?)```", section, re.S)
    assert code and out, "README: the Python section's five lines or their output are missing"
    return code.group(1), out.group(1)


def table(text: str) -> tuple[list[str], list[str], list[list[str]]]:
    """(column headers, row labels, cells) of a DataFrame.to_string() of single letters"""
    lines = [ln.split() for ln in text.strip().splitlines()]
    header, rows = lines[0][1:], [ln for ln in lines[2:]]  # line 0: columns; line 1: the index's name
    return header, [r[0] for r in rows], [r[1:] for r in rows]


def test_readme_phase_analysis(tms: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, shown = readme_blocks()
    lines = [ln for ln in code.strip().splitlines() if ln.strip()]
    assert len(lines) == 5, f"the README promises five lines, it shows {len(lines)}"
    os.symlink(REPO / "experiments", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md (Python)", "exec"), namespace)
    printed = out.getvalue()
    got_cols, got_rows, got = table(printed)
    want_cols, want_rows, want = table(shown)
    assert (got_cols, got_rows) == (want_cols, want_rows), printed
    extra = namespace["extra"]
    norm = np.asarray(extra.norm.values)  # type: ignore[attr-defined]
    sup = np.asarray(extra.superposition.values)  # type: ignore[attr-defined]
    borderline = (np.abs(norm - geometry.REPRESENTED_NORM) < 0.05) | (
        (norm > geometry.REPRESENTED_NORM) & (np.abs(sup - geometry.SUPERPOSITION_SHARED) < 0.05))
    differ = [(got_rows[r], got_cols[c], want[r][c], got[r][c]) for r in range(len(got)) for c in range(len(got[r]))
              if got[r][c] != want[r][c] and not borderline[r, c]]
    assert not differ, f"README's table is out of date at (density, importance, README, now) {differ}; now:\n{printed}"
    # and the paper's corners (the figure_facts test checks them at 10,000 steps): dense, the
    # extra feature 10x less important is dropped, 10x more important gets the dimension;
    # sparse with equal importance, both share it (an antipodal pair)
    assert got[0][0] == "N" and got[0][-1] == "D" and got[-1][want_cols.index("1.0000")] == "S", printed
