"""End-to-end: the pipeline and CLI on the demo world honour the SCHEMA result contract."""

from __future__ import annotations

import csv
import filecmp
import importlib
from pathlib import Path

import pandas as pd
import pytest

from graphbuild.schema import ACCOUNTS_CSV_COLUMNS, CLUSTERS_CSV_COLUMNS
from hydrascope.cli import main


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_import_community_is_ours():
    """python-louvain also installs a top-level `community`; ours must win."""
    mod = importlib.import_module("community")
    assert Path(mod.__file__).resolve().parent == Path(__file__).resolve().parent.parent / "community"
    assert hasattr(mod, "detect") and hasattr(mod, "score")


def test_accounts_csv_contract(demo_run, demo_world):
    rows = _read(demo_run / "accounts.csv")
    assert list(rows[0].keys()) == list(ACCOUNTS_CSV_COLUMNS)
    ids = [r["account_id"] for r in rows]
    inp = pd.read_csv(demo_world / "accounts.csv", dtype=str, keep_default_na=False)["account_id"]
    assert sorted(ids) == sorted(inp) and len(set(ids)) == len(ids)  # every input account exactly once
    clusters = {r["cluster_id"] for r in _read(demo_run / "clusters.csv")}
    for r in rows:
        assert r["flagged"] in ("true", "false")
        assert 0.0 <= float(r["score"]) <= 1.0
        assert r["cluster_id"] == "" or r["cluster_id"] in clusters
        if r["flagged"] == "true":
            assert r["cluster_id"] != ""


def test_clusters_csv_contract(demo_run):
    rows = _read(demo_run / "clusters.csv")
    assert rows and list(rows[0].keys()) == list(CLUSTERS_CSV_COLUMNS)
    acc = pd.DataFrame(_read(demo_run / "accounts.csv"))
    sizes = acc[acc["cluster_id"] != ""].groupby("cluster_id").size()
    flagged_acc = acc[acc["flagged"] == "true"].groupby("cluster_id").size()
    for r in rows:
        assert int(r["n_accounts"]) == sizes[r["cluster_id"]]
        assert 0.0 <= float(r["score"]) <= 1.0
        assert r["flagged"] in ("true", "false")
        assert r["reasons"].strip()
        if r["flagged"] == "true":
            assert flagged_acc[r["cluster_id"]] == int(r["n_accounts"])
    assert any(r["flagged"] == "true" for r in rows), "the demo world's campaigns must be found"


def test_flagged_accounts_are_mostly_campaign_accounts(demo_run, demo_world):
    acc = pd.read_csv(demo_run / "accounts.csv", dtype=str, keep_default_na=False)
    labels = pd.read_csv(demo_world / "labels.csv", dtype=str)
    flagged = set(acc.loc[acc["flagged"] == "true", "account_id"])
    campaign = set(labels["account_id"])
    assert len(flagged & campaign) / len(flagged) >= 0.8


def test_same_seed_same_bytes(demo_world, demo_run, tmp_path):
    from hydrascope.config import RunConfig
    from hydrascope.pipeline import run

    # resources (one DuckDB thread, a small memory limit that makes it spill) change nothing
    again = run(demo_world, tmp_path / "again", RunConfig(seed=0, memory_limit="256MB", threads=1)).run_dir
    for name in ("accounts.csv", "clusters.csv", "run.json", "rejects.csv", "clusters.json", "links.parquet",
                 "account_identifiers.parquet", "templates.parquet"):
        assert filecmp.cmp(demo_run / name, again / name, shallow=False), name


def test_labels_never_reach_detection(demo_world, tmp_path):
    """Removing the labels table changes nothing in the results."""
    import shutil

    from hydrascope.config import RunConfig
    from hydrascope.pipeline import run

    bare = tmp_path / "bare"
    shutil.copytree(demo_world, bare)
    (bare / "labels.csv").unlink()
    a = run(demo_world, tmp_path / "a", RunConfig(site=False)).run_dir
    b = run(bare, tmp_path / "b", RunConfig(site=False)).run_dir
    assert (a / "accounts.csv").read_bytes() == (b / "accounts.csv").read_bytes()
    assert (a / "clusters.csv").read_bytes() == (b / "clusters.csv").read_bytes()


def test_parquet_bundle_written_by_someone_else(demo_world, tmp_path):
    """A bundle in Parquet with extra columns, written with pandas, runs unchanged."""
    from hydrascope.config import RunConfig
    from hydrascope.pipeline import run

    other = tmp_path / "other"
    other.mkdir()
    for t in ("accounts", "events", "payments"):
        df = pd.read_csv(demo_world / f"{t}.csv", dtype=str, keep_default_na=False)
        df["extra_column"] = "x"
        df = df[df.columns[::-1]]  # column order does not matter
        df.to_parquet(other / f"{t}.parquet")
    res = run(other, tmp_path / "r", RunConfig(site=False))
    acc = pd.read_csv(res.run_dir / "accounts.csv", dtype=str, keep_default_na=False)
    assert len(acc) == len(pd.read_csv(demo_world / "accounts.csv", dtype=str))


def test_cli_run_and_evaluate(demo_world, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["run", str(demo_world), "--out", str(out), "--no-site", "-q"]) == 0
    assert (out / "accounts.csv").is_file()
    assert main(["evaluate", str(out), str(demo_world / "labels.csv")]) == 0
    text = capsys.readouterr().out
    assert "precision" in text and "campaign" in text


def test_cli_errors_are_clean(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["run", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hydrascope: error:") and "accounts" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["run", "demo", "evaluate", "demo-world", "evidence", "verify", "report",
                                     "export neo4j", "site"])
def test_every_command_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as e:
        main(command.split() + ["--help"])
    assert e.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_bad_config_value_names_it(tmp_path):
    from graphbuild.errors import ConfigError
    from hydrascope.config import load_config

    p = tmp_path / "c.toml"
    p.write_text("[community]\nmethod = 'louvain'\n")
    with pytest.raises(ConfigError, match="louvain"):
        load_config(p)
    p.write_text("[evidence]\nhub_kap = 3\n")
    with pytest.raises(ConfigError, match="hub_kap"):
        load_config(p)
