"""Tests for the built-in demo world generator and the `demo-world` command."""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from graphbuild.schema import COLUMNS
from hydrascope.demo.world import FORMATS, WorldInfo, generate_world, load_sample_prompts

N = 800
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
TABLES = ("accounts", "events", "payments", "labels")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> WorldInfo:
    return generate_world(tmp_path_factory.mktemp("w") / "world", n_accounts=N, seed=11)


def _read(info: WorldInfo, table: str) -> pd.DataFrame:
    return pd.read_csv(info.path / f"{table}.csv", dtype=str, keep_default_na=False)


def _meta(info: WorldInfo) -> dict:
    return json.loads((info.path / "world.json").read_text(encoding="utf-8"))


def test_files_and_exact_columns(world):
    assert set(world.files) == {f"{t}.csv" for t in TABLES} | {"world.json", "population.csv"}
    for t in TABLES:
        with open(world.path / f"{t}.csv", encoding="utf-8") as f:
            header = f.readline().strip().replace('"', "").split(",")
        assert tuple(header) == COLUMNS[t]


def test_types_parse(world):
    acc, ev, pay = _read(world, "accounts"), _read(world, "events"), _read(world, "payments")
    assert len(acc) == N == world.n_accounts and acc.account_id.is_unique
    assert len(ev) == world.n_events > 20 * N
    for col in (acc.created_at, ev.ts, pay.ts):
        assert col.str.match(ISO).all()
        pd.to_datetime(col, utc=True)  # raises if unparsable
    for ip in pd.concat([ev.ip, acc.signup_ip]).unique():
        ipaddress.ip_address(ip)
    assert (ev.prompt_tokens.astype(int) > 0).all() and (ev.completion_tokens.astype(int) > 0).all()
    assert set(ev.account_id) <= set(acc.account_id)
    assert set(pay.account_id) <= set(acc.account_id)
    assert set(pay.instrument_type) <= {"card", "prepaid_card", "paypal"}
    assert set(acc.country) - {""} and acc.country.str.len().eq(2).all()
    # rows are sorted: accounts by id, events by (account, ts)
    assert list(acc.account_id) == sorted(acc.account_id)
    key = list(zip(ev.account_id, ev.ts))
    assert key == sorted(key)
    ts = pd.to_datetime(ev.ts, utc=True)
    assert ts.min() >= pd.Timestamp("2026-10-01", tz="UTC") and ts.max() < pd.Timestamp("2026-10-29", tz="UTC")
    created = pd.to_datetime(acc.set_index("account_id").created_at, utc=True)
    assert (ts.dt.tz_convert(None).to_numpy() >= created.loc[ev.account_id].dt.tz_convert(None).to_numpy()).all()


def test_loader_accepts_everything(world):
    from graphbuild.bundle import load_bundle

    b = load_bundle(world.path, now="2030-01-01")
    try:
        assert len(b.rejects) == 0, b.rejects.head()
        assert b.counts["events"]["rows_accepted"] == world.n_events
        assert b.has_payments and b.has_labels
    finally:
        b.close()


def test_campaigns_present_with_planned_sizes(world):
    labels, meta = _read(world, "labels"), _meta(world)
    counts = labels.campaign_id.value_counts().to_dict()
    assert 6 <= len(world.campaigns) <= 8
    assert counts == {cid: c["size"] for cid, c in world.campaigns.items()}
    assert all(c["size"] >= 6 for c in world.campaigns.values())
    assert 0.10 <= len(labels) / N <= 0.20
    ev = _read(world, "events")
    active = set(ev.account_id)
    for cid in world.campaigns:
        members = set(labels.account_id[labels.campaign_id == cid])
        assert len(members & active) >= 0.9 * len(members), cid
    assert meta["benign_orgs"] == world.benign_orgs and len(world.benign_orgs) >= 3
    acc = _read(world, "accounts")
    assert set(world.benign_orgs) <= set(acc.org_id)
    # no benign organisation has a labelled account
    lab = set(labels.account_id)
    assert not (set(acc.account_id[acc.org_id.isin(world.benign_orgs)]) & lab)


def test_scaled_sizes_at_default(tmp_path):
    info = generate_world(tmp_path / "w", n_accounts=3000, seed=1, fmt="parquet")
    sizes = {c: v["size"] for c, v in info.campaigns.items()}
    assert all(20 <= s <= 300 for s in sizes.values()), sizes
    assert 0.12 <= sum(sizes.values()) / 3000 <= 0.15
    acc = pq.read_table(info.path / "accounts.parquet").to_pandas()
    n_company_orgs = acc.org_id.dropna().nunique()
    assert 35 <= n_company_orgs <= 70
    assert 30 * 3000 <= info.n_events <= 200_000


def test_growing_and_late_campaigns(world):
    acc = _read(world, "accounts").set_index("account_id")
    labels = _read(world, "labels")
    ev = _read(world, "events")
    ev["t"] = pd.to_datetime(ev.ts, utc=True)
    mid = pd.Timestamp("2026-10-01", tz="UTC") + pd.Timedelta(days=14)
    created = pd.to_datetime(acc.created_at, utc=True)

    grow = labels.account_id[labels.campaign_id == "camp_resproxy_growing"]
    late_share = (created.loc[grow] >= mid).mean()
    assert 0.4 <= late_share <= 0.6
    g = ev[ev.account_id.isin(grow)]
    first_half = (g.t < mid).sum()
    assert (g.t >= mid).sum() > 1.2 * first_half  # more accounts -> more traffic later
    # synchronized dispatch: many requests of distinct accounts inside the same few seconds
    sec = g.t.dt.floor("5s")
    per_window = g.groupby(sec).account_id.nunique()
    assert (per_window >= 3).sum() >= 50

    jail = labels.account_id[labels.campaign_id == "camp_jailbreak_late"]
    assert (created.loc[jail] > mid).all()
    assert (ev.t[ev.account_id.isin(jail)] > mid).all()
    assert world.campaigns["camp_jailbreak_late"]["start_day"] >= 14


def test_campaign_signals(world):
    labels = _read(world, "labels")
    acc = _read(world, "accounts").set_index("account_id")
    ev = _read(world, "events")
    pay = _read(world, "payments")
    members = lambda cid: set(labels.account_id[labels.campaign_id == cid])  # noqa: E731

    dc = members("camp_dc_burst")
    created = pd.to_datetime(acc.created_at, utc=True).loc[list(dc)]
    assert created.max() - created.min() < pd.Timedelta(hours=36)
    e = ev[ev.account_id.isin(dc)]
    assert e.ip.str.rsplit(".", n=1).str[0].nunique() <= 2
    assert e.prompt.is_unique
    assert pay[pay.account_id.isin(dc)].instrument_id.nunique() <= 5

    slow = ev[ev.account_id.isin(members("camp_slow_slot"))]
    hours = pd.to_datetime(slow.ts, utc=True).dt.hour
    assert hours.nunique() <= 2  # one fixed slot (a session may spill into the next hour)
    assert not pay.account_id.isin(members("camp_slow_slot")).any()
    assert slow.groupby("account_id").ip.nunique().max() <= 2

    split = members("camp_split_operator")
    p = pay[pay.account_id.isin(split)]
    shared = p.instrument_id.value_counts()
    assert shared.iloc[0] == len(split)  # one card across both fleets
    assert ev[ev.account_id.isin(split)].user_agent.nunique() == 1

    fake = members("camp_fake_company")
    assert acc.loc[list(fake)].org_id.nunique() == 1 and acc.loc[list(fake)].org_id.iloc[0] != ""


def test_benign_lookalikes(world):
    labels = _read(world, "labels")
    ev = _read(world, "events")
    benign = ev[~ev.account_id.isin(labels.account_id)]
    # carrier-grade NAT / VPN: some IPs shared by many unrelated benign accounts
    assert benign.groupby("ip").account_id.nunique().max() >= 40
    # popular templates used by many unrelated people
    tr = benign[benign.prompt.str.startswith("Translate the following text into French:")]
    assert tr.account_id.nunique() >= 10
    # step-by-step maths homework
    assert benign.prompt.str.contains("Show your work", regex=False).sum() >= 50
    pay = _read(world, "payments")
    bp = pay[~pay.account_id.isin(labels.account_id)]
    assert bp.instrument_id.value_counts().max() >= 5  # company cards shared by staff


def test_hostile_strings_present(world):
    ev = _read(world, "events")
    acc = _read(world, "accounts")
    prompts = "\n".join(ev.prompt)
    for s in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)", "</textarea>",
              "'; MATCH (n) DETACH DELETE n //", '=HYPERLINK("http://x")', "+cmd", "@SUM(A1)", "`"):
        assert s in prompts, s
    for lead in ("=", "+", "@", "-"):
        assert ev.prompt.str.startswith(lead).any(), lead
    assert acc.email_domain.str.startswith("=").any()
    uas = set(ev.user_agent)
    assert any("<script>" in u for u in uas) and any("=HYPERLINK" in u for u in uas)
    assert any("<" in d for d in acc.email_domain)
    assert 'acct_"<b>x</b>' in set(acc.account_id)
    labels = _read(world, "labels")
    assert 'acct_"<b>x</b>' in set(labels.account_id)
    # hostile text appears in benign and campaign prompts alike
    lab = set(labels.account_id)
    hit = ev[ev.prompt.str.contains("<script>alert(1)</script>", regex=False)]
    assert hit.account_id.isin(lab).any() and (~hit.account_id.isin(lab)).any()


def test_no_hostile(tmp_path):
    info = generate_world(tmp_path / "w", n_accounts=300, seed=2, hostile=False)
    text = "".join((info.path / f"{t}.csv").read_text(encoding="utf-8") for t in ("accounts", "labels"))
    assert "<b>" not in text and "<script>" not in text
    ev = (info.path / "events.csv").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in ev and "DETACH DELETE" not in ev


def test_deterministic(tmp_path, world):
    again = generate_world(tmp_path / "again", n_accounts=N, seed=11)
    for f in world.files:
        assert (world.path / f).read_bytes() == (again.path / f).read_bytes(), f
    other = generate_world(tmp_path / "other", n_accounts=N, seed=12)
    assert (other.path / "events.csv").read_bytes() != (world.path / "events.csv").read_bytes()
    assert (other.path / "accounts.csv").read_bytes() != (world.path / "accounts.csv").read_bytes()


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> WorldInfo:
    return generate_world(tmp_path_factory.mktemp("small") / "csv", n_accounts=300, seed=5, fmt="csv")


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "csv"])
def test_formats(tmp_path, fmt, small_csv):
    base = small_csv
    info = generate_world(tmp_path / fmt, n_accounts=300, seed=5, fmt=fmt)
    ext = {"csv.gz": ".csv.gz", "parquet": ".parquet", "jsonl": ".jsonl"}[fmt]
    assert info.n_events == base.n_events
    for t in TABLES:
        p = info.path / f"{t}{ext}"
        if fmt == "parquet":
            df = pq.read_table(p).to_pandas()
        elif fmt == "jsonl":
            df = pd.read_json(p, lines=True, dtype=False)
        else:
            with gzip.open(p, "rt", encoding="utf-8") as f:
                df = pd.read_csv(f, dtype=str, keep_default_na=False)
        ref = pd.read_csv(base.path / f"{t}.csv", dtype=str, keep_default_na=False)
        assert tuple(df.columns) == COLUMNS[t]
        assert len(df) == len(ref)
        assert list(df.account_id) == list(ref.account_id)
        if t == "events":
            assert list(df.prompt) == list(ref.prompt)
            if fmt == "parquet":
                ts_type = pq.read_schema(p).field("ts").type
                assert str(ts_type).startswith("timestamp[") and ts_type.tz == "UTC"
                assert (df.ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ") == ref.ts).all()
            else:
                assert list(df.ts) == list(ref.ts)
    # the loader reads every format the same way
    from graphbuild.bundle import load_bundle

    b = load_bundle(info.path, now="2030-01-01")
    try:
        assert len(b.rejects) == 0
        assert b.counts["events"]["rows_accepted"] == info.n_events
    finally:
        b.close()
    again = generate_world(tmp_path / (fmt + "2"), n_accounts=300, seed=5, fmt=fmt)
    for f in info.files:
        assert (info.path / f).read_bytes() == (again.path / f).read_bytes(), f


def test_sample_prompts_shipped():
    s = load_sample_prompts()
    assert len(s["benign"]) == 800 and len(s["tasks"]) == 2000 and len(s["jailbreak"]) >= 190
    assert max(len(r["text"]) for rows in s.values() for r in rows) <= 2000
    assert Path(__file__).resolve().parent.parent.joinpath("hydrascope/demo/data/ATTRIBUTION.md").exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_world(tmp_path, n_accounts=300, fmt="xlsx")
    with pytest.raises(ValueError):
        generate_world(tmp_path, n_accounts=10)


def test_cli_demo_world(tmp_path, capsys):
    from hydrascope.cli import main

    out = tmp_path / "cli"
    assert main(["demo-world", str(out), "--accounts", "300", "--seed", "4", "--format", "parquet"]) == 0
    text = capsys.readouterr().out
    assert "camp_dc_burst" in text and "300 accounts" in text
    assert {p.name for p in out.iterdir()} == {f"{t}.parquet" for t in TABLES} | {"world.json", "population.csv"}
    meta = json.loads((out / "world.json").read_text())
    assert meta["parameters"]["seed"] == 4 and meta["counts"]["accounts"] == 300
    assert main(["demo-world", str(tmp_path / "q"), "--accounts", "300", "-q", "--no-hostile"]) == 0
    assert capsys.readouterr().out == ""


def test_event_volume_per_kind(world):
    meta = _meta(world)
    ev = _read(world, "events")
    per = ev.groupby("account_id").size()
    labels = _read(world, "labels")
    benign = per[~per.index.isin(labels.account_id)]
    assert 10 <= np.median(benign) <= 60 and 25 <= benign.mean() <= 60
    assert meta["population"]["company_staff"] > 0 and meta["population"]["household"] > 0


@pytest.mark.parametrize("days", [7, 45])
def test_other_period_lengths(tmp_path, days):
    info = generate_world(tmp_path / "w", n_accounts=300, seed=3, days=days, start="2025-03-01")
    acc = pd.read_csv(info.path / "accounts.csv", dtype=str, keep_default_na=False).set_index("account_id")
    ev = pd.read_csv(info.path / "events.csv", dtype=str, keep_default_na=False)
    start = pd.Timestamp("2025-03-01", tz="UTC")
    end = start + pd.Timedelta(days=days)
    ts = pd.to_datetime(ev.ts, utc=True)
    assert ts.min() >= start and ts.max() < end
    created = pd.to_datetime(acc.created_at, utc=True)
    assert created.max() < end
    labels = pd.read_csv(info.path / "labels.csv", dtype=str)
    jail = labels.account_id[labels.campaign_id == "camp_jailbreak_late"]
    assert (created.loc[jail] > start + pd.Timedelta(days=days / 2)).all()
    assert len(info.campaigns) == 7


def test_blockwise_generation(tmp_path, monkeypatch):
    """Large worlds are generated a block of accounts at a time; the result must stay valid."""
    import hydrascope.demo.world as world_mod

    monkeypatch.setattr(world_mod, "_ACCOUNT_BLOCK", 97)
    monkeypatch.setattr(world_mod, "_ROW_CHUNK", 1000)
    info = generate_world(tmp_path / "a", n_accounts=600, seed=8)
    again = generate_world(tmp_path / "b", n_accounts=600, seed=8)
    for f in info.files:
        assert (info.path / f).read_bytes() == (again.path / f).read_bytes(), f
    ev = pd.read_csv(info.path / "events.csv", dtype=str, keep_default_na=False)
    key = list(zip(ev.account_id, ev.ts))
    assert key == sorted(key)
    labels = pd.read_csv(info.path / "labels.csv", dtype=str)
    for cid in ("camp_dc_burst", "camp_resproxy_growing", "camp_slow_slot"):
        e = ev[ev.account_id.isin(labels.account_id[labels.campaign_id == cid])]
        # the blatant fleet never repeats a prompt; stealthier ones only repeat cover chats, rarely
        assert len(e) > 0 and (e.prompt.is_unique if cid == "camp_dc_burst" else e.prompt.duplicated().mean() < 0.05), cid
    assert ev.prompt.str.contains("<script>alert(1)</script>", regex=False).any()
    assert info.n_events == len(ev)


def test_population_file(world):
    pop = _read(world, "population")
    labels = _read(world, "labels")
    assert list(pop.account_id) == list(_read(world, "accounts").account_id)
    assert set(pop.population) == {"individual", "household", "student", "developer", "company_staff", "integrator",
                                   "university", "campaign"}
    camp = pop[pop.campaign_id != ""]
    assert dict(zip(camp.account_id, camp.campaign_id)) == dict(zip(labels.account_id, labels.campaign_id))
    assert (pop.population == "campaign").sum() == len(labels)
    assert set(pop.group_id[pop.population.isin(["company_staff", "integrator", "university"])]) == set(world.benign_orgs)
    assert pop.events.astype(int).sum() == world.n_events
