#!/usr/bin/env python3
"""Strip outputs, execution counts and run metadata from Jupyter notebooks in place (before committing).

Usage: python scripts/strip_notebooks.py notebooks/*.ipynb [--check]

With --check nothing is written; the exit status is 1 when a notebook would change.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def strip(nb) -> bool:
    """Remove outputs, execution counts and per-run metadata; True when something changed."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code":
            if cell.outputs or cell.execution_count is not None:
                changed = True
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
    for key in ("widgets", "papermill"):
        if key in nb.metadata:
            del nb.metadata[key]
            changed = True
    return changed


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"]
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if strip(nb):
            dirty.append(path)
            if not check:
                nbformat.write(nb, path)
    for path in dirty:
        print(f"{'has outputs' if check else 'stripped'}: {path}")
    return 1 if check and dirty else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
