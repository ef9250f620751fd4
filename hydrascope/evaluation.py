"""Evaluate a run folder against the labels of its bundle (the CLI's `evaluate`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from community.evaluation import evaluate, layer_purity
from exporters.runfolder import RunFolder
from graphbuild.errors import BundleError
from graphbuild.schema import RunFiles

__all__ = ["evaluate_run", "read_labels"]


def read_labels(path) -> tuple[pd.DataFrame, pd.Series | None]:
    """Labels (and declared orgs when the bundle is at hand) from a labels file or a bundle folder."""
    from graphbuild.bundle import load_bundle

    p = Path(path)
    if p.is_dir():
        b = load_bundle(p)
        try:
            if not b.has_labels:
                raise BundleError(f"{p} has no labels table")
            orgs = b.con.execute("SELECT account_id, org_id FROM accounts WHERE org_id IS NOT NULL").df()
            return b.labels(), orgs.set_index("account_id")["org_id"]
        finally:
            b.close()
    if not p.is_file():
        raise BundleError(f"labels file {p} does not exist")
    import duckdb

    df = duckdb.sql(f"SELECT * FROM '{str(p).replace(chr(39), chr(39) * 2)}'").df()
    missing = [c for c in ("account_id", "campaign_id") if c not in df.columns]
    if missing:
        raise BundleError(f"{p}: missing required column {missing[0]!r}")
    return df[["account_id", "campaign_id"]].astype(str), None


def evaluate_run(run_dir, labels) -> dict:
    """Precision/recall/F1, per-campaign recall, benign orgs flagged and layer purity of a run."""
    run = RunFolder(run_dir)
    lab, orgs = read_labels(labels)
    ev = evaluate(run.accounts, lab, orgs=orgs)
    if (run.path / RunFiles.LINKS).exists():  # absent in run folders other tools wrote
        purity = layer_purity(run.links, lab)
        ev["layers"] = {k: {c: (int(v) if c == "n_links" else float(v)) for c, v in row.items()}
                        for k, row in purity.iterrows()}
    return ev
