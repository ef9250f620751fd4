"""The Spark engine builds the same evidence graph as the DuckDB engine (graphbuild.spark_engine)."""

from __future__ import annotations

import os
import warnings
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphbuild.bundle import load_bundle
from graphbuild.config import EvidenceConfig
from graphbuild.errors import ConfigError
from graphbuild.graph import build_evidence
from graphbuild.pairs import expand_pairs

pytestmark = pytest.mark.spark

T0 = datetime(2026, 3, 2, 9, 0, 0)
NOW = datetime(2026, 6, 1)
PRE = ("Solve the following problem. Think step by step and write out every intermediate step of your "
       "reasoning before giving the final answer.\n\nProblem: ")
SUF = "\n\nEnd with: Final answer: <number> and nothing else after it please."
MATHS = ["What is {a} plus {b}?", "A train leaves at {a} km/h for {b} hours; how far does it go?",
         "If {a} apples cost {b} dollars, what does one cost?", "Find x when {a}x = {b}."]
CHAT = ("my cat keeps knocking things off the table any tips for stopping this behaviour at home "
        "please because it is driving me mad every single evening")


@pytest.fixture(scope="module")
def spark():
    """One local SparkSession for the module; fails instead of skipping under HYDRASCOPE_REQUIRE_SPARK=1."""
    required = os.environ.get("HYDRASCOPE_REQUIRE_SPARK") == "1"
    try:
        import pyspark  # noqa: F401

        from graphbuild.engine import get_spark

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # small-data settings: code generation and adaptive planning cost more than they save here
            session = get_spark("local[2]", shuffle_partitions=2, conf={
                "spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"})
    except Exception as exc:  # pyspark missing, Java missing
        if required:
            pytest.fail(f"Spark is required (HYDRASCOPE_REQUIRE_SPARK=1) but unavailable: {exc}")
        pytest.skip(f"Spark unavailable: {exc}")
    yield session
    session.stop()


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds") + "Z"


def _tiny_bundle(folder: Path) -> Path:
    """Hand-made edge cases: half-second times, IPv6 prefixes, a hub, a templated fleet in lockstep,
    prepaid and undated instruments, rare and common user agents."""
    folder.mkdir(parents=True, exist_ok=True)
    acc = []
    for i in range(14):
        created = T0 - timedelta(days=10, seconds=-i * 900) + timedelta(milliseconds=500 * (i % 4))
        acc.append({"account_id": f"a{i:02d}", "created_at": _iso(created), "email_domain": "gmail.com",
                    "country": "DE", "signup_ip": ["198.51.100.7", "2001:db8:5::1", None, "not-an-ip"][i % 4]})
    ev = []

    def add(a, t, ip, prompt=None, ua="Mozilla/5.0 (X11; Linux x86_64)"):
        ev.append({"account_id": a, "ts": _iso(t), "ip": ip, "user_agent": ua, "prompt": prompt})

    # a shared household IP and a neighbouring address (prefix), two days apart, half seconds
    for d, a in enumerate(["a00", "a01", "a02"]):
        add(a, T0 + timedelta(hours=3 * d, milliseconds=500), "203.0.113.7", CHAT)
        add(a, T0 + timedelta(days=2, seconds=1, milliseconds=500), "203.0.113.7")
    add("a03", T0 + timedelta(hours=30, milliseconds=2500), "203.0.113.9")
    # IPv6 /48 neighbours
    add("a04", T0 + timedelta(hours=5), "2001:db8:1:2::5")
    add("a05", T0 + timedelta(hours=6, milliseconds=1500), "2001:db8:1:3::7")
    add("a05", T0 + timedelta(hours=6, minutes=1), "2001:db8:1:2::5")
    # a hub IP shared by five (hub_cap=3 in one config)
    for a in ["a00", "a04", "a10", "a11", "a12"]:
        add(a, T0 + timedelta(hours=40, minutes=int(a[1:])), "100.64.3.1")
    # a templated fleet in lockstep with a rare user agent
    fleet = ["a06", "a07", "a08", "a09"]
    for w in range(8):
        for j, a in enumerate(fleet):
            q = MATHS[(w + j) % len(MATHS)].format(a=w + 2 * j + 3, b=7 * w + j + 11)
            add(a, T0 + timedelta(days=1, minutes=17 * w, seconds=3 * j, milliseconds=500 * (w % 2)),
                f"192.0.2.{10 + j}", PRE + q + SUF, ua="fleet-client/0.9")
    # one account repeating a near-duplicate long text (a 'd' template used alone)
    for k in range(3):
        add("a13", T0 + timedelta(days=3, minutes=k), "198.51.100.200", CHAT + f" number {k}")
    pay = [
        {"account_id": "a00", "instrument_id": "card-1", "instrument_type": "PREPAID_CARD", "ts": _iso(T0)},
        {"account_id": "a01", "instrument_id": "card-1", "instrument_type": "prepaid_card",
         "ts": _iso(T0 + timedelta(milliseconds=1500))},
        {"account_id": "a02", "instrument_id": "bank-9", "instrument_type": "bank", "ts": None},
        {"account_id": "a03", "instrument_id": "bank-9", "instrument_type": None, "ts": None},
        {"account_id": "a03", "instrument_id": "bank-9", "instrument_type": "bank", "ts": _iso(T0)},
        {"account_id": "a06", "instrument_id": "gift-3", "instrument_type": "gift_card", "ts": _iso(T0)},
        {"account_id": "a07", "instrument_id": "gift-3", "instrument_type": "gift_card", "ts": _iso(T0)},
    ]
    pd.DataFrame(acc).to_csv(folder / "accounts.csv", index=False)
    pd.DataFrame(ev).to_csv(folder / "events.csv", index=False)
    pd.DataFrame(pay).to_csv(folder / "payments.csv", index=False)
    return folder


def _assert_same(d, s) -> None:
    """Every table of two EvidenceGraphs equal: exact, except weights to 1e-12."""
    assert list(d.accounts) == list(s.accounts)
    assert d.timing_window_seconds == s.timing_window_seconds
    keys = {"links": ["a", "b", "layer"], "uses": ["account_id", "kind", "identifier"],
            "identifiers": ["kind", "identifier"], "templates": ["template_id"], "features": ["account_id"]}
    for name, key in keys.items():
        x = getattr(d, name).sort_values(key, ignore_index=True)
        y = getattr(s, name).sort_values(key, ignore_index=True)
        assert list(x.columns) == list(y.columns), name
        assert len(x) == len(y), f"{name}: {len(x)} rows (duckdb) vs {len(y)} (spark)"
        if name == "templates":
            x, y = x.assign(examples=x["examples"].map(list)), y.assign(examples=y["examples"].map(list))
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=0, atol=1e-12, obj=name)
    np.testing.assert_array_equal(d.hours, s.hours)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = _tiny_bundle(tmp_path_factory.mktemp("spark") / "tiny")
    b = load_bundle(path, now=NOW)
    yield b
    b.close()


CONFIGS = {
    "tight": EvidenceConfig(hub_cap=4, ip_window_hours=5, timing_window_seconds=60, timing_min_common=2,
                            signup_window_hours=1, min_link_weight=0.0),
    # sparse expansion of groups above 3 sharers (the hub IP, the fleet's user agent)
    "ablation": EvidenceConfig(layers=("network", "timing"), ip_window_hours=7, timing_window_seconds=7,
                               pair_sample_above=3),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_tiny_bundle_same_graph(spark, tiny, name):
    config = CONFIGS[name]
    d = build_evidence(tiny, config)
    s = build_evidence(tiny, config, engine="spark")
    assert set(d.links["layer"]) == set(config.layers)
    _assert_same(d, s)


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype({c: object for c in df.columns if df[c].dtype != "float64" and df[c].dtype.kind not in "iu"})
    return df.sort_values(list(df.columns), ignore_index=True)


def test_layer_uses_equal_per_layer(spark, tiny, tmp_path):
    """Each layer's raw uses (internal kinds too: ip_window, signup_window) equal DuckDB's."""
    from graphbuild.layers import network_uses, payment_uses, prompt_templates, timing_uses
    from graphbuild.spark_engine import SparkOps, export_parquet

    con = tiny.con
    export_parquet(con, tmp_path)
    ops = SparkOps(spark, tmp_path)
    same = lambda x, y: pd.testing.assert_frame_equal(_rows(x), _rows(y), check_dtype=False)  # noqa: E731
    try:
        for h in (5, 24):
            same(network_uses(con, ip_window_hours=h), ops.network_uses(con, ip_window_hours=h))
        same(payment_uses(con), ops.payment_uses(con))
        for w, h in ((7, 1), (60, 2)):
            same(timing_uses(con, window_seconds=w, signup_window_hours=h),
                 ops.timing_uses(con, window_seconds=w, signup_window_hours=h))
        d_uses, d_tpl = prompt_templates(con, perms=64, rows=4, threshold=0.6)
        for by_key in (True, False):
            ops.prompt_key = by_key
            s_uses, s_tpl = ops.prompt_templates(con, perms=64, rows=4, threshold=0.6)
            same(d_uses, s_uses)
            same(d_tpl, s_tpl)
    finally:
        ops.close()


def test_tiny_bundle_covers_the_edge_cases(tiny):
    """The tiny bundle really exercises what the equality test claims (DuckDB side only)."""
    d = build_evidence(tiny, CONFIGS["tight"])
    kinds = set(d.uses["kind"])
    assert {"ip", "prefix", "signup_ip", "instrument", "template", "user_agent"} <= kinds
    assert d.identifiers["is_hub"].any()
    assert set(d.links["layer"]) == {"network", "payment", "prompt", "timing"}
    assert (pd.to_datetime(d.uses["first_seen"]).dt.microsecond == 0).all()


def test_demo_world_same_graph(spark, tmp_path_factory):
    from hydrascope.demo.world import generate_world

    path = tmp_path_factory.mktemp("spark_world") / "world"
    generate_world(path, n_accounts=int(os.environ.get("HYDRASCOPE_SPARK_TEST_ACCOUNTS", "300")), seed=3)
    b = load_bundle(path)
    try:
        d = build_evidence(b)
        s = build_evidence(b, engine="spark")
    finally:
        b.close()
    assert set(d.links["layer"]) == {"network", "payment", "prompt", "timing"}
    _assert_same(d, s)


def test_minimal_bundle_without_payments_or_prompts(spark, tmp_path):
    """Next to nothing to link: no payments table, no prompts, one shared IP."""
    folder = tmp_path / "minimal"
    folder.mkdir()
    pd.DataFrame({"account_id": ["x1", "x2", "x3"], "created_at": [_iso(T0)] * 3}).to_csv(
        folder / "accounts.csv", index=False)
    pd.DataFrame({"account_id": ["x1", "x2"], "ts": [_iso(T0), _iso(T0 + timedelta(seconds=1))],
                  "ip": ["192.0.2.1", "192.0.2.1"]}).to_csv(folder / "events.csv", index=False)
    b = load_bundle(folder, now=NOW)
    try:
        d = build_evidence(b)
        s = build_evidence(b, engine="spark")
    finally:
        b.close()
    _assert_same(d, s)


def test_spark_expand_pairs_matches_numpy(spark):
    from graphbuild.spark_engine import spark_expand_pairs

    rng = np.random.default_rng(5)
    n = 3000
    acc = rng.integers(0, 400, n)
    ident = rng.integers(0, 250, n)
    keep = ~pd.DataFrame({"a": acc, "i": ident}).duplicated().to_numpy()
    acc, ident = acc[keep], ident[keep]
    w = rng.random(len(acc))
    first = rng.integers(0, 10**6, len(acc))
    last = first + rng.integers(0, 10**5, len(acc))
    share = rng.random(len(acc))
    options = [{"hub_cap": 12}, {"hub_cap": 12, "share": share}, {"hub_cap": 12, "share": share, "min_contribution": 0.2},
               {"hub_cap": 20, "share": share, "sample_above": 8}]
    import inspect

    accepted = set(inspect.signature(expand_pairs).parameters)
    options = [o for o in options if set(o) <= accepted]
    for opt in options:
        x = expand_pairs(acc, ident, w, first, last, **opt)
        # small buckets: identifiers spread over several Python workers' calls
        y = spark_expand_pairs(spark, acc, ident, w, first, last, rows_per_bucket=700, **opt)
        assert len(x) > 100
        pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=0, atol=1e-12)
    empty = spark_expand_pairs(spark, acc[:0], ident[:0], w[:0], first[:0], last[:0], hub_cap=12)
    assert empty.empty and list(empty.columns) == ["a", "b", "raw", "count", "first", "last"]


def test_unknown_engine_is_a_config_error(tiny):
    with pytest.raises(ConfigError, match="unknown engine"):
        build_evidence(tiny, engine="flink")
