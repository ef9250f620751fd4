"""Evidence packages: contents, reproducibility, tamper detection, redaction, indicators, inert HTML."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import struct
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from exporters.evidence import (PACKAGE_MEMBERS, ZIP_DATE_TIME, build_package, build_packages,
                                neutralise_cell, package_filename)
from exporters.indicators import canonical_value, indicator, key_from_env
from exporters.verify import verify_package
from graphbuild.errors import ConfigError, RunFolderError

KEY = b"shared-secret-between-providers-0001"
OTHER_KEY = b"a-completely-different-key-0002!!"

HOSTILE = [
    "<script>alert(1)</script> Solve step by step: what is 17*23? Think carefully.",
    "<img src=x onerror=alert(1)> Solve step by step: what is 41*12? Think carefully.",
    "javascript:alert(1) Solve step by step: what is 9*99? Think carefully.",
    "</textarea><b>bold</b> Solve step by step: what is 3*77? Think carefully.",
    "=HYPERLINK(\"http://attacker.example\",\"x\") Explain your chain of thought in detail.",
]
EVIL_ID = 'evil"<b>1'
EMAIL_DOMAINS = {"a01": "proxyfarm-mail.example", "a02": "proxyfarm-mail.example", "a03": "tempinbox.example",
                 EVIL_ID: "<script>x</script>.example", "a05": "other-farm.example", "a06": "other-farm.example",
                 "a07": "benign-corp.example", "a08": "benign-corp.example", "a09": "lonely.example"}


# --- a hand-made run folder following docs/run-folder.md --------------------------------------------

def _ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


def make_run_folder(root: Path, *, seed: int = 7, c2_id: str = "C0002") -> tuple[Path, Path]:
    """Write a small bundle and a run folder as `hydrascope run` would; return (run_dir, bundle_dir).

    `c2_id` names the second flagged cluster (to try hostile cluster ids)."""
    bundle = root / "bundle"
    run = root / "run"
    bundle.mkdir(parents=True)
    run.mkdir(parents=True)
    c1 = ["a01", "a02", "a03", EVIL_ID]
    c2 = ["a05", "a06"]
    c3 = ["a07", "a08"]
    accounts = sorted(EMAIL_DOMAINS)
    pd.DataFrame({"account_id": accounts,
                  "created_at": ["2026-11-01T10:00:00Z"] * len(accounts),
                  "email_domain": [EMAIL_DOMAINS[a] for a in accounts]}).to_csv(bundle / "accounts.csv", index=False)
    ev_rows = []
    for i, acc in enumerate(c1 * 3):
        ev_rows.append({"account_id": acc, "ts": f"2026-11-02T10:{i:02d}:00Z", "ip": f"203.0.113.{10 + i % 4}",
                        "user_agent": "python-requests/2.31", "api_key_id": f"k-{acc}", "model": "frontier-1",
                        "prompt": HOSTILE[i % len(HOSTILE)], "prompt_tokens": 100 + i, "completion_tokens": 900})
    for i, acc in enumerate(c2 * 2):
        ev_rows.append({"account_id": acc, "ts": f"2026-11-03T08:{i:02d}:00Z", "ip": "2001:db8:7::1",
                        "user_agent": "=cmd|' /C calc'!A0", "api_key_id": "", "model": "frontier-1",
                        "prompt": "-2+3 Reason through every step of the derivation before answering.",
                        "prompt_tokens": 50, "completion_tokens": 500})
    for i, acc in enumerate(c3 + ["a09"]):
        ev_rows.append({"account_id": acc, "ts": f"2026-11-04T12:{i:02d}:00Z", "ip": "198.51.100.5",
                        "user_agent": "Mozilla/5.0", "api_key_id": "", "model": "frontier-1",
                        "prompt": "Please summarise this quarterly report for the board meeting.",
                        "prompt_tokens": 20, "completion_tokens": 80})
    events = pd.DataFrame(ev_rows)
    events.to_csv(bundle / "events.csv", index=False)
    sha = {n: hashlib.sha256((bundle / f"{n}.csv").read_bytes()).hexdigest() for n in ("accounts", "events")}

    member_of = {**{a: "C0001" for a in c1}, **{a: c2_id for a in c2}, **{a: "C0003" for a in c3}}
    flagged_c = {"C0001": True, c2_id: True, "C0003": False}
    score = {"a01": 0.93, "a02": 0.91, "a03": 0.88, EVIL_ID: 0.95, "a05": 0.71, "a06": 0.7, "a07": 0.2,
             "a08": 0.18, "a09": 0.01}
    with open(run / "accounts.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["account_id", "cluster_id", "flagged", "score"])
        for a in accounts:
            c = member_of.get(a, "")
            w.writerow([a, c, "true" if flagged_c.get(c) else "false", f"{score[a]:.4f}"])
    reasons = {
        "C0001": ["4 accounts share 4 IPs in 203.0.113.0/24",
                  "templated chain-of-thought prompts: <img src=x onerror=alert(1)>", "signed up within 1 minute"],
        c2_id: ["2 accounts share IPv6 prefix 2001:db8:7::/48", "rare user agent =cmd|' /C calc'!A0"],
        "C0003": ["2 accounts share one IP"],
    }
    clusters_rows = [("C0001", 4, 0.92, True), (c2_id, 2, 0.7, True), ("C0003", 2, 0.19, False)]
    with open(run / "clusters.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["cluster_id", "n_accounts", "score", "flagged", "reasons"])
        for cid, n, s, f in clusters_rows:
            w.writerow([cid, n, f"{s:.4f}", "true" if f else "false", ";".join(reasons[cid])])
    (run / "run.json").write_text(json.dumps({
        "version": "0.1.0", "seed": seed,
        "config": {"seed": seed, "resolution": 1.0, "min_cluster_size": 2},
        "bundle": str(bundle),
        "inputs": {n: {"file": f"{n}.csv", "sha256": sha[n], "rows_read": 1, "rows_accepted": 1, "rows_rejected": 0}
                   for n in ("accounts", "events")},
        "window": {"since": "2026-11-01T00:00:00Z", "until": "2026-11-05T00:00:00Z"},
        "counts": {"accounts": len(accounts), "events": len(events)}, "previous_run": None,
    }, indent=2, sort_keys=True) + "\n")
    (run / "rejects.csv").write_text("table,file,line,column,value,reason,action\n")

    links = []
    for cs, layer in ((c1, "network"), (c1, "prompt"), (c2, "network"), (c3, "network")):
        for i, a in enumerate(sorted(cs)):
            for b in sorted(cs)[i + 1:]:
                links.append({"account_a": a, "account_b": b, "layer": layer, "weight": 0.5, "evidence_count": 3,
                              "first_seen": _ts("2026-11-02T10:00Z"), "last_seen": _ts("2026-11-02T10:11Z")})
    pd.DataFrame(links).to_parquet(run / "links.parquet", index=False)

    ai = []
    for i, a in enumerate(c1):
        for ip in ("203.0.113.10", "203.0.113.11"):
            ai.append((a, "ip", ip))
        ai.append((a, "prefix", "203.0.113.0/24"))
        ai.append((a, "instrument", "pp-card-=SUM(A1)"))
        ai.append((a, "template", "T0001"))
        ai.append((a, "ip", f"192.0.2.{i}"))  # used by one member only
    for a in c2:
        ai += [(a, "ip", "2001:db8:7::1"), (a, "prefix", "2001:db8:7::/48"), (a, "user_agent", "=cmd|' /C calc'!A0")]
    for a in c3:
        ai += [(a, "ip", "198.51.100.5")]
    ai.append(("a09", "ip", "198.51.100.5"))
    for a in c1 + c2:
        ai.append((a, "ip", "10.0.0.1"))  # a hub: too common to count
    pd.DataFrame([{"account_id": a, "kind": k, "identifier": v, "n_events": 3,
                   "first_seen": _ts("2026-11-02T10:00Z"), "last_seen": _ts("2026-11-02T10:11Z")} for a, k, v in ai]
                 ).to_parquet(run / "account_identifiers.parquet", index=False)
    idents = {}
    for a, k, v in ai:
        idents.setdefault((k, v), set()).add(a)
    layer_of = {"ip": "network", "prefix": "network", "instrument": "payment", "template": "prompt",
                "user_agent": "timing"}
    pd.DataFrame([{"kind": k, "identifier": v, "layer": layer_of[k], "n_accounts": len(s),
                   "pair_weight": 0.0 if v == "10.0.0.1" else 0.5, "is_hub": v == "10.0.0.1"}
                  for (k, v), s in sorted(idents.items())]).to_parquet(run / "identifiers.parquet", index=False)
    skeleton = "<TAG> Solve step by step: what is <NUM>*<NUM>? Think carefully."
    pd.DataFrame([{"template_id": "T0001", "skeleton": skeleton, "n_accounts": 4, "n_prompts": 12, "is_hub": False,
                   "examples": [HOSTILE[0], HOSTILE[1], HOSTILE[3]]}]).to_parquet(run / "templates.parquet", index=False)
    feats = pd.DataFrame({"account_id": accounts, "n_requests": [3] * len(accounts),
                          "reasoning_share": [0.9] * len(accounts), "template_share": [0.8] * len(accounts),
                          "hours_to_first_use": [-0.5] * len(accounts),
                          "email_domain": [EMAIL_DOMAINS[a] for a in accounts]})
    feats.to_parquet(run / "account_features.parquet", index=False)
    pd.DataFrame({"account_id": accounts, "cluster_id": [member_of.get(a) for a in accounts],
                  "score": [score[a] for a in accounts],
                  "flagged": [bool(flagged_c.get(member_of.get(a, ""), False)) for a in accounts],
                  "embeddedness": [0.8] * len(accounts)}).to_parquet(run / "account_details.parquet", index=False)
    members = {"C0001": c1, c2_id: c2, "C0003": c3}
    details = []
    for cid, n, s, f in clusters_rows:
        details.append({
            "cluster_id": cid, "n_accounts": n, "score": s, "flagged": f, "reasons": reasons[cid],
            "signals": {"reasoning_share": 0.9, "signup_burst": 1.0}, "stability": 0.97,
            "members": sorted(members[cid]), "layer_weight": {"network": 0.6, "prompt": 0.4},
            "top_identifiers": [], "hourly_profile": [0.0] * 24,
            "templates": ([{"template_id": "T0001", "skeleton": skeleton, "n_in_cluster": 12, "share_of_prompts": 1.0,
                            "examples": [HOSTILE[0], HOSTILE[1], HOSTILE[3]]}] if cid == "C0001" else []),
            "first_seen": "2026-11-02T10:00:00Z", "last_seen": "2026-11-02T10:11:00Z",
            "created_first": "2026-11-01T10:00:00Z", "created_last": "2026-11-01T10:00:00Z",
        })
    (run / "clusters.json").write_text(json.dumps({"clusters": details}, indent=2, sort_keys=True) + "\n")
    pd.DataFrame({"cluster_id": ["C0001", "C0001", c2_id, "C0003"],
                  "hour": [_ts("2026-11-02T10:00Z"), _ts("2026-11-02T11:00Z"), _ts("2026-11-03T08:00Z"),
                           _ts("2026-11-04T12:00Z")],
                  "requests": [12, 3, 4, 3], "signups": [4, 0, 2, 2]}).to_parquet(run / "cluster_activity.parquet",
                                                                                   index=False)
    ce = events[events["account_id"].map(lambda a: flagged_c.get(member_of.get(a, ""), False))].copy()
    ce["ts"] = pd.to_datetime(ce["ts"], utc=True)
    ce["cluster_id"] = ce["account_id"].map(member_of)
    ce.to_parquet(run / "cluster_events.parquet", index=False)
    return run, bundle


# --- fixtures -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_run_folder(tmp_path_factory.mktemp("evidence-world"))


@pytest.fixture(scope="module")
def packages(world, tmp_path_factory):
    run, _ = world
    return build_packages(run, tmp_path_factory.mktemp("packages"), flagged=True, indicator_key=KEY)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _rezip(src: Path, dst: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME), data)
    return dst


# --- building -----------------------------------------------------------------------------------------

def test_flagged_clusters_get_one_verified_package_each(packages):
    assert [p.name for p in packages] == ["cluster-C0001.zip", "cluster-C0002.zip"]
    for p in packages:
        result = verify_package(p)
        assert result.ok, result.problems
        assert result.changed == result.added == result.removed == []
        assert result.cluster_id == p.stem.split("-", 1)[1]


def test_package_members_order_and_fixed_metadata(packages):
    with zipfile.ZipFile(packages[0]) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == list(PACKAGE_MEMBERS)
    for i in infos:
        assert i.date_time == ZIP_DATE_TIME
        assert (i.external_attr >> 16) == 0o100644
        assert i.compress_type == (zipfile.ZIP_STORED if i.filename.endswith(".png") else zipfile.ZIP_DEFLATED)


def test_building_twice_gives_identical_bytes(world, packages, tmp_path):
    run, _ = world
    again = build_packages(run, tmp_path, flagged=True, indicator_key=KEY)
    for a, b in zip(packages, again):
        assert a.read_bytes() == b.read_bytes()


def test_package_contents(packages):
    m = _members(packages[0])
    manifest = json.loads(m["manifest.json"])
    assert [f["name"] for f in manifest["files"]] == list(PACKAGE_MEMBERS[:-1])
    for f in manifest["files"]:
        assert hashlib.sha256(m[f["name"]]).hexdigest() == f["sha256"]
    facts = json.loads(m["run.json"])
    assert facts["seed"] == 7 and facts["software"]["version"] == "0.1.0"
    assert set(facts["inputs"]) == {"accounts", "events"} and all(len(i["sha256"]) == 64 for i in facts["inputs"].values())
    assert facts["cluster_id"] == "C0001" and facts["redacted"] is False
    assert set(facts["run_folder_files"]) >= {"accounts.csv", "clusters.json", "cluster_events.parquet"}

    accounts = pd.read_csv(io.BytesIO(m["accounts.csv"]), dtype=str, keep_default_na=False)
    assert sorted(accounts["account_id"]) == sorted(["a01", "a02", "a03", EVIL_ID])
    assert accounts["account_id"].iloc[0] == EVIL_ID  # highest score first
    assert {"score", "embeddedness", "n_links_in_cluster", "shared_ip", "shared_template",
            "reasoning_share"} <= set(accounts.columns)
    assert (accounts["hours_to_first_use"] == "-0.5").all()  # numbers are not "neutralised"

    idents = pd.read_csv(io.BytesIO(m["identifiers.csv"]), dtype=str, keep_default_na=False)
    assert "192.0.2.0" not in set(idents["identifier"])  # used by one member only: not shared
    row = idents[idents["identifier"] == "203.0.113.10"].iloc[0]
    assert row["n_in_cluster"] == "4" and row["first_seen"] == "2026-11-02T10:00:00Z"
    assert row["last_seen"] == "2026-11-02T10:11:00Z"
    assert "'pp-card-=SUM(A1)" not in set(idents["identifier"])  # does not start with =
    assert idents[idents["identifier"] == "10.0.0.1"]["is_hub"].tolist() == ["true"]

    events = pd.read_csv(io.BytesIO(m["events.csv"]), dtype=str, keep_default_na=False)
    assert len(events) == 12 and set(events["cluster_id"]) == {"C0001"}
    assert events["ts"].iloc[0] == "2026-11-02T10:00:00Z" and events["ts"].is_monotonic_increasing
    assert HOSTILE[0] in set(events["prompt"])
    assert "'=HYPERLINK" in m["events.csv"].decode()  # formula neutralised

    templates = pd.read_csv(io.BytesIO(m["templates.csv"]), dtype=str, keep_default_na=False)
    assert templates["example_1"].tolist() == [HOSTILE[0]]
    links = pd.read_csv(io.BytesIO(m["links.csv"]), dtype=str)
    assert len(links) == 12 and set(links["layer"]) == {"network", "prompt"}
    assert m["timeline.png"].startswith(b"\x89PNG") and m["graph.png"].startswith(b"\x89PNG")
    html = m["summary.html"].decode()
    for reason in ("4 accounts share 4 IPs in 203.0.113.0/24", "signed up within 1 minute"):
        assert reason in html
    assert "data:image/png;base64," in html


def test_every_csv_cell_is_neutralised(packages):
    for p in packages:
        for name, data in _members(p).items():
            if not name.endswith(".csv"):
                continue
            for row in csv.reader(io.StringIO(data.decode())):
                for cell in row:
                    if cell[:1] in ("=", "+", "@", "\t", "\r"):
                        raise AssertionError(f"{p.name}/{name}: unneutralised cell {cell!r}")
                    if cell.startswith("-"):
                        float(cell)  # only a negative number may start with "-"
    c2 = _members(packages[1])
    assert "'=cmd|' /C calc'!A0" in c2["events.csv"].decode()
    assert "'-2+3 Reason" in c2["events.csv"].decode()


@pytest.mark.parametrize("value,expected", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("a=b", "a=b"), ("", ""),
])
def test_neutralise_cell(value, expected):
    assert neutralise_cell(value) == expected


def test_safe_file_names_whatever_the_cluster_id():
    names = {package_filename(c) for c in ("C0001", "../../etc/passwd", "a/b", "a\\b", "..", "", " ", "<b>",
                                           "x" * 500, "C0001/", "C0001\x00")}
    assert len(names) == 11
    for n in names:
        assert n.startswith("cluster-") and n.endswith(".zip") and "/" not in n and "\\" not in n
        assert len(n) < 100 and ".." not in n.removesuffix(".zip")
    assert package_filename("C0001") == "cluster-C0001.zip"


def test_odd_cluster_id_and_unflagged_cluster_from_bundle(world, tmp_path):
    run, bundle = world
    # a cluster that is not flagged has no rows in cluster_events.parquet: read them from the bundle
    p = build_package(run, "C0003", tmp_path, bundle_dir=bundle)
    m = _members(p)
    events = pd.read_csv(io.BytesIO(m["events.csv"]), dtype=str)
    assert sorted(events["account_id"]) == ["a07", "a08"]
    assert json.loads(m["run.json"])["events_source"] == "input bundle"
    assert verify_package(p).ok
    without = build_package(run, "C0003", tmp_path / "nobundle")
    assert json.loads(_members(without)["run.json"])["events_source"] == "none"
    assert _members(without)["events.csv"].decode().count("\n") == 1  # the header only


def test_bundle_must_be_the_one_the_run_read(world, tmp_path):
    run, bundle = world
    other = tmp_path / "other"
    other.mkdir()
    (other / "events.csv").write_text((bundle / "events.csv").read_text() + "a07,2026-11-05T00:00:00Z,1.2.3.4,,,,,,\n")
    from graphbuild.errors import ExportError

    with pytest.raises(ExportError, match="SHA-256"):
        build_package(run, "C0003", tmp_path, bundle_dir=other)


def test_unknown_cluster_and_missing_run_folder(world, tmp_path):
    run, _ = world
    with pytest.raises(RunFolderError, match="C9999"):
        build_packages(run, tmp_path, cluster_ids=["C0001", "C9999"])
    assert not list(tmp_path.iterdir())  # nothing written before failing
    with pytest.raises(RunFolderError):
        build_package(tmp_path / "nope", "C0001", tmp_path)


def test_cluster_ids_select_and_order(world, tmp_path):
    run, _ = world
    out = build_packages(run, tmp_path, cluster_ids=["C0002", "C0003", "C0002"])
    assert [p.name for p in out] == ["cluster-C0002.zip", "cluster-C0003.zip"]
    both = build_packages(run, tmp_path / "b", cluster_ids=["C0003"], flagged=True)
    assert [p.name for p in both] == ["cluster-C0003.zip", "cluster-C0001.zip", "cluster-C0002.zip"]


# --- tampering ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("member", PACKAGE_MEMBERS)
def test_flipping_a_byte_of_any_member_is_named(packages, tmp_path, member):
    src = packages[0]
    members = list(_members(src).items())
    flipped = []
    for name, data in members:
        if name == member:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
        flipped.append((name, data))
    result = verify_package(_rezip(src, tmp_path / "t.zip", flipped))
    assert not result.ok
    assert result.changed == [member] and result.added == [] and result.removed == []


@pytest.mark.parametrize("member", PACKAGE_MEMBERS)
def test_flipping_a_raw_byte_in_the_archive_is_named(packages, tmp_path, member):
    raw = bytearray(packages[0].read_bytes())
    with zipfile.ZipFile(packages[0]) as zf:
        info = zf.getinfo(member)
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    at = info.header_offset + 30 + name_len + extra_len + info.compress_size // 2
    raw[at] ^= 0xFF
    bad = tmp_path / "raw.zip"
    bad.write_bytes(bytes(raw))
    result = verify_package(bad)
    assert not result.ok and result.changed == [member], result.problems


@pytest.mark.parametrize("member", PACKAGE_MEMBERS)
def test_removing_any_member_is_named(packages, tmp_path, member):
    kept = [(n, d) for n, d in _members(packages[0]).items() if n != member]
    result = verify_package(_rezip(packages[0], tmp_path / "r.zip", kept))
    assert not result.ok and result.removed == [member] and result.changed == []


@pytest.mark.parametrize("extra", ["extra.txt", "../escape.txt", "summary.html"])
def test_adding_a_member_is_named(packages, tmp_path, extra):
    members = list(_members(packages[0]).items()) + [(extra, b"<script>alert(1)</script>")]
    with pytest.warns(UserWarning) if extra == "summary.html" else _nullcontext():
        path = _rezip(packages[0], tmp_path / "a.zip", members)
    result = verify_package(path)
    assert not result.ok and result.added == [extra] and result.changed == [] and result.removed == []


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_verify_rejects_a_non_zip(tmp_path):
    p = tmp_path / "x.zip"
    p.write_bytes(b"not a zip at all")
    result = verify_package(p)
    assert not result.ok and result.problems


# --- redaction ----------------------------------------------------------------------------------------

def test_redaction_leaves_out_prompts_and_email_domains(world, tmp_path):
    run, bundle = world
    out = build_packages(run, tmp_path, flagged=True, redact=True, indicator_key=KEY)
    events = pd.read_csv(bundle / "events.csv", dtype=str, keep_default_na=False)
    templates = pd.read_parquet(run / "templates.parquet")
    skeletons = set(templates["skeleton"])
    prompts = {p for p in events["prompt"] if len(p) >= 12 and not any(p in s for s in skeletons)}
    assert prompts
    for p in out:
        assert verify_package(p).ok
        for name, data in _members(p).items():
            text = data.decode("utf-8", errors="replace")
            for prompt in prompts:
                for variant in (prompt, prompt.replace("<", "&lt;"), prompt.replace("\"", "&#34;"),
                                neutralise_cell(prompt), prompt[:40]):
                    assert variant not in text, f"{p.name}/{name} holds prompt text {prompt!r}"
            for domain in set(EMAIL_DOMAINS.values()):
                assert domain not in text, f"{p.name}/{name} holds e-mail domain {domain!r}"
        facts = json.loads(_members(p)["run.json"])
        assert facts["redacted"] is True
        tpl = pd.read_csv(io.BytesIO(_members(p)["templates.csv"]), dtype=str)
        assert not any(c.startswith("example") for c in tpl.columns)


# --- indicators ---------------------------------------------------------------------------------------

def _indicators(path: Path) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(_members(path)["indicators.csv"]), dtype=str, keep_default_na=False)


def test_indicators_match_across_runs_with_the_same_key(world, tmp_path):
    run, _ = world
    other_run, _ = make_run_folder(tmp_path / "second", seed=99)
    a = _indicators(build_package(run, "C0001", tmp_path / "a", indicator_key=KEY))
    b = _indicators(build_package(other_run, "C0001", tmp_path / "b", indicator_key=KEY))
    c = _indicators(build_package(run, "C0001", tmp_path / "c", indicator_key=OTHER_KEY))
    assert list(a.columns) == ["kind", "indicator", "n_in_cluster", "first_seen", "last_seen"]
    assert set(a["kind"]) == {"ip", "prefix", "instrument", "template"}
    assert set(a["indicator"]) == set(b["indicator"])
    assert not set(a["indicator"]) & set(c["indicator"])
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in a["indicator"])
    # documented format: hex HMAC-SHA256(key, "kind:canonical value"); hubs are left out
    import hmac as _hmac

    expected = _hmac.new(KEY, b"ip:203.0.113.10", hashlib.sha256).hexdigest()
    assert expected in set(a["indicator"])
    assert _hmac.new(KEY, b"prefix:203.0.113.0/24", hashlib.sha256).hexdigest() in set(a["indicator"])
    assert _hmac.new(KEY, b"ip:10.0.0.1", hashlib.sha256).hexdigest() not in set(a["indicator"])
    raw = b"".join(_members(build_package(run, "C0001", tmp_path / "d", indicator_key=KEY)).values())
    assert KEY not in raw


def test_no_indicators_without_a_key(packages, world, tmp_path):
    run, _ = world
    assert "indicators.csv" not in _members(build_package(run, "C0001", tmp_path))


@pytest.mark.parametrize("kind,a,b", [
    ("ip", "203.0.113.7", "::ffff:203.0.113.7"),
    ("ip", "2001:DB8::0001", "2001:db8::1"),
    ("prefix", "203.0.113.0/24", "203.0.113.99/24"),
    ("prefix", "2001:db8:7::/48", "2001:0DB8:0007:0000::/48"),
    ("template", "Solve  step\nby step <NUM>", " Solve step by step <NUM> "),
    ("instrument", " card-123 ", "card-123"),
])
def test_canonical_values_agree(kind, a, b):
    assert canonical_value(kind, a) == canonical_value(kind, b)
    assert indicator(KEY, kind, a) == indicator(KEY, kind, b)


def test_indicator_key_rules(monkeypatch):
    with pytest.raises(ConfigError):
        indicator(b"short", "ip", "1.2.3.4")
    monkeypatch.setenv("HS_KEY", "hex:" + KEY.hex())
    assert key_from_env("HS_KEY") == KEY
    monkeypatch.setenv("HS_KEY", KEY.decode())
    assert key_from_env("HS_KEY") == KEY
    monkeypatch.setenv("HS_KEY", "tiny")
    with pytest.raises(ConfigError, match="16 bytes"):
        key_from_env("HS_KEY")
    monkeypatch.delenv("HS_KEY")
    with pytest.raises(ConfigError, match="HS_KEY"):
        key_from_env("HS_KEY")


# --- the CLI ------------------------------------------------------------------------------------------

def test_cli_evidence_and_verify(world, tmp_path, monkeypatch, capsys):
    from hydrascope.cli import main

    run, _ = world
    monkeypatch.setenv("HS_TEST_KEY", KEY.decode())
    assert main(["evidence", str(run), "--flagged", "--out", str(tmp_path), "--indicator-key-env", "HS_TEST_KEY"]) == 0
    out = capsys.readouterr().out
    assert "cluster-C0001.zip" in out and "cluster-C0002.zip" in out
    pkg = tmp_path / "cluster-C0001.zip"
    assert main(["verify", str(pkg)]) == 0
    assert "OK" in capsys.readouterr().out
    members = [(n, d) for n, d in _members(pkg).items() if n != "links.csv"]
    members = [(n, d + b"x" if n == "accounts.csv" else d) for n, d in members] + [("new.txt", b"")]
    bad = _rezip(pkg, tmp_path / "bad.zip", members)
    assert main(["verify", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "changed: accounts.csv" in out and "removed: links.csv" in out and "added: new.txt" in out
    assert main(["evidence", str(run), "--cluster", "C9999", "--out", str(tmp_path)]) == 1
    assert "C9999" in capsys.readouterr().err


def test_cli_help_has_examples(capsys):
    from hydrascope.cli import main

    for cmd in ("evidence", "verify"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "examples:" in capsys.readouterr().out


# --- the summary in a real browser --------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("redact", [False, True])
def test_hostile_text_in_summary_is_inert(world, tmp_path, redact):
    from tests.browser import open_browser, require_browser

    require_browser()
    run, _ = world
    pkg = build_package(run, "C0001", tmp_path, redact=redact, indicator_key=KEY)
    html = tmp_path / "summary.html"
    html.write_bytes(_members(pkg)["summary.html"])
    with open_browser() as browser:
        visit = browser.open(html, settle_ms=500)
        assert visit.clean, visit.problems()
        page = visit.page
        assert page.evaluate("document.querySelectorAll('script, iframe, object, embed, textarea, form').length") == 0
        assert page.evaluate("document.querySelectorAll('[onerror], [onload], [onclick]').length") == 0
        assert page.evaluate("Array.from(document.images).every(i => i.src.startsWith('data:image/png'))")
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.evaluate("document.querySelectorAll('a[href]').length") == 0
        bold = page.evaluate("Array.from(document.querySelectorAll('b')).map(b => b.textContent)")
        assert bold == []
        text = page.inner_text("body")
        assert EVIL_ID in text  # the hostile account id is shown as text
        assert "<img src=x onerror=alert(1)>" in text  # the hostile reason, as text
        if not redact:
            assert "<script>alert(1)</script>" in text and "</textarea><b>bold</b>" in text
        else:
            assert "alert(1)</script>" not in text


# --- the demo world (tests/conftest.py: demo_world, demo_run) -----------------------------------------

@pytest.fixture(scope="module")
def demo_packages(demo_run, tmp_path_factory):
    paths = build_packages(demo_run, tmp_path_factory.mktemp("demo-packages"), flagged=True, indicator_key=KEY)
    assert paths, "the demo world should have flagged clusters"
    return paths


def test_demo_flagged_clusters_verify_and_rebuild_identically(demo_run, demo_packages, tmp_path):
    flagged = pd.read_csv(demo_run / "clusters.csv", dtype=str, keep_default_na=False)
    expected = sorted(package_filename(c) for c in flagged.loc[flagged["flagged"] == "true", "cluster_id"])
    assert sorted(p.name for p in demo_packages) == expected
    for p in demo_packages:
        result = verify_package(p)
        assert result.ok, result.problems
    # rebuild the two smallest (building is what is checked, not size) and compare bytes
    two = sorted(demo_packages, key=lambda p: (p.stat().st_size, p.name))[:2]
    ids = [json.loads(_members(p)["manifest.json"])["cluster_id"] for p in two]
    again = build_packages(demo_run, tmp_path, cluster_ids=ids, indicator_key=KEY)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in two]


def test_demo_package_contents_match_the_run(demo_run, demo_packages):
    from exporters.runfolder import RunFolder

    run = RunFolder(demo_run)
    p = demo_packages[0]
    m = _members(p)
    cid = json.loads(m["manifest.json"])["cluster_id"]
    accounts = pd.read_csv(io.BytesIO(m["accounts.csv"]), dtype=str, keep_default_na=False)
    assert sorted(accounts["account_id"]) == sorted(run.cluster(cid)["members"])
    events = pd.read_csv(io.BytesIO(m["events.csv"]), dtype=str, keep_default_na=False)
    assert len(events) == int((run.events["cluster_id"].astype(str) == cid).sum()) > 0
    facts = json.loads(m["run.json"])
    assert facts["inputs"] == run.meta["inputs"] and facts["seed"] == run.meta["seed"]
    for reason in run.cluster(cid)["reasons"]:
        assert reason.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in m["summary.html"].decode() \
            or reason in m["summary.html"].decode().replace("&#39;", "'").replace("&#34;", '"')


def _smallest(paths):
    return min(paths, key=lambda p: (p.stat().st_size, p.name))


@pytest.mark.parametrize("member", PACKAGE_MEMBERS)
def test_demo_tampering_with_any_member_is_named(demo_packages, tmp_path, member):
    src = _smallest(demo_packages)
    raw = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo(member)
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    raw[info.header_offset + 30 + name_len + extra_len + info.compress_size // 2] ^= 0x01
    (tmp_path / "flip.zip").write_bytes(bytes(raw))
    flipped = verify_package(tmp_path / "flip.zip")
    assert not flipped.ok and flipped.changed == [member], flipped.problems
    kept = [(n, d) for n, d in _members(src).items() if n != member]
    removed = verify_package(_rezip(src, tmp_path / "removed.zip", kept))
    assert not removed.ok and removed.removed == [member] and removed.changed == []


def test_demo_adding_a_member_is_named(demo_packages, tmp_path):
    src = _smallest(demo_packages)
    path = _rezip(src, tmp_path / "added.zip", list(_members(src).items()) + [("notes/extra.csv", b"a,b\n")])
    result = verify_package(path)
    assert not result.ok and result.added == ["notes/extra.csv"] and not result.changed and not result.removed


def test_demo_redaction_leaves_no_prompt_or_email_domain(demo_world, demo_run, tmp_path):
    out = build_packages(demo_run, tmp_path, flagged=True, redact=True)
    accounts = pd.read_csv(demo_world / "accounts.csv", dtype=str, keep_default_na=False)
    events = pd.read_csv(demo_world / "events.csv", dtype=str, keep_default_na=False,
                         usecols=["account_id", "prompt"])
    skeletons = list(pd.read_parquet(demo_run / "templates.parquet")["skeleton"])
    run_accounts = pd.read_csv(demo_run / "accounts.csv", dtype=str, keep_default_na=False)
    for p in out:
        assert verify_package(p).ok
        cid = json.loads(_members(p)["manifest.json"])["cluster_id"]
        members = set(run_accounts.loc[run_accounts["cluster_id"] == cid, "account_id"])
        domains = set(accounts.loc[accounts["account_id"].isin(members), "email_domain"]) - {""}
        prompts = sorted({x for x in events.loc[events["account_id"].isin(members), "prompt"]
                          if len(x) >= 24 and not any(x in s for s in skeletons)})
        assert domains and prompts
        text = "\n".join(d.decode("utf-8", errors="replace") for d in _members(p).values())
        lowered = text.lower()
        leaked = [d for d in domains if d.lower() in lowered]
        assert not leaked, f"{p.name}: e-mail domains {leaked[:5]}"
        sample = prompts[:: max(1, len(prompts) // 300)]  # an even spread of the distinct prompts
        leaked = [x for x in sample if x in text]
        assert not leaked, f"{p.name}: prompts {[x[:60] for x in leaked[:3]]}"


@pytest.mark.browser
def test_demo_summaries_are_inert_in_chromium(demo_packages, tmp_path):
    from tests.browser import open_browser, require_browser

    require_browser()
    with open_browser() as browser:
        for p in demo_packages:
            html = tmp_path / f"{p.stem}.html"
            html.write_bytes(_members(p)["summary.html"])
            visit = browser.open(html, settle_ms=300)
            assert visit.clean, visit.problems()
            page = visit.page
            assert page.evaluate(
                "document.querySelectorAll('script, iframe, object, embed, textarea, form, a[href], b, "
                "[onerror], [onload], [onclick]').length") == 0
            assert page.evaluate("Array.from(document.images).every(i => i.src.startsWith('data:image/png') "
                                 "&& i.complete && i.naturalWidth > 0)")
            assert page.evaluate("document.images.length") == 2


@pytest.mark.parametrize("cid", ['../../C"<b>2', "C0002/../../x", "<script>alert(1)</script>", "=1+1", "C\u00e9 \u2028"])
def test_hostile_cluster_id(tmp_path, cid):
    run, _ = make_run_folder(tmp_path / "w", c2_id=cid)
    out = tmp_path / "out"
    p = build_package(run, cid, out)
    assert p.parent == out and p.name == package_filename(cid) and [x.name for x in out.iterdir()] == [p.name]
    result = verify_package(p)
    assert result.ok and result.cluster_id == cid
    m = _members(p)
    assert json.loads(m["run.json"])["cluster_id"] == cid
    html = m["summary.html"].decode()
    assert "<b>" not in html and "<script>alert" not in html
    events = pd.read_csv(io.BytesIO(m["events.csv"]), dtype=str, keep_default_na=False)
    assert len(events) == 4 and set(events["cluster_id"]) == {neutralise_cell(cid)}
