"""Known-answer tests for the evidence graph (graphbuild.build_evidence), one tiny bundle per layer."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphbuild.bundle import load_bundle
from graphbuild.config import EvidenceConfig
from graphbuild.graph import build_evidence
from graphbuild.layers.prompts import _densify
from graphbuild.pairs import expand_pairs

T0 = datetime(2026, 3, 2)
NOW = datetime(2026, 6, 1)
MATHS = ["What is {a} plus {b}?", "A train leaves at {a} km/h for {b} hours; how far does it go?",
         "If {a} apples cost {b} dollars, what does one cost?", "Find x when {a}x = {b}.",
         "A rectangle is {a} by {b}; what is its area?", "How many minutes are in {a} hours and {b} minutes?"]
FLEET_PRE = ("Solve the following problem. Think step by step and write out every intermediate step of your "
             "reasoning before giving the final answer.\n\nProblem: ")
FLEET_SUF = "\n\nEnd with: Final answer: <number> and nothing else after it please."
CHAT = ["my cat keeps knocking things off the table, any tips for stopping this behaviour at home",
        "what should I cook tonight with leftover rice some eggs and a few vegetables from the fridge",
        "write a short birthday poem for my grandmother who loves gardening and long walks by the sea",
        "how do I politely decline a wedding invitation from a colleague I barely know at work",
        "recommend three science fiction novels for someone who enjoyed the martian and project hail mary",
        "explain the offside rule in football as if I had never watched a single match in my life"]


WORDS = ("apple river market window garden silver engine letter music planet winter coffee paper summer "
         "forest bridge camera doctor island orange pocket rabbit signal theory valley yellow basket candle "
         "dinner empire fabric ginger harbor jacket kitten ladder mirror needle office pepper quiet rocket "
         "saddle ticket umbrella velvet wallet anchor bottle circle desert feather glove hammer").split()


def _chat(rng) -> str:
    """A unique personal message: strangers do not repeat each other's sentences."""
    return " ".join(rng.choice(WORDS, size=int(rng.integers(18, 30))))


def _acc(i: int, **kw) -> dict:
    d = {"account_id": f"a{i:03d}", "created_at": (T0 - timedelta(days=30 + i)).isoformat(),
         "email_domain": "gmail.com", "country": "DE", "org_id": None, "signup_ip": f"198.51.{100 + i % 50}.{i % 250 + 1}"}
    d.update(kw)
    return d


def _ev(acc: str, ts: datetime, ip: str, prompt: str, ua: str = "Mozilla/5.0") -> dict:
    return {"account_id": acc, "ts": ts.isoformat(), "ip": ip, "user_agent": ua, "prompt": prompt,
            "completion_tokens": 300}


def _write(folder: Path, accounts: list, events: list, payments: list | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(accounts).to_csv(folder / "accounts.csv", index=False)
    pd.DataFrame(events).to_csv(folder / "events.csv", index=False)
    if payments:
        pd.DataFrame(payments).to_csv(folder / "payments.csv", index=False)
    return folder


def _background(n: int, start: int = 100, rng=None) -> tuple[list, list]:
    """``n`` unrelated accounts, each on its own home IP, chatting at random hours."""
    rng = rng or np.random.default_rng(0)
    accs, evs = [], []
    for i in range(start, start + n):
        accs.append(_acc(i))
        for j in range(12):
            t = T0 + timedelta(days=int(rng.integers(0, 20)), seconds=int(rng.integers(0, 86400)))
            evs.append(_ev(f"a{i:03d}", t, f"203.0.{i % 200}.{i % 250 + 1}", _chat(rng)))
    return accs, evs


def _build(tmp_path: Path, accounts, events, payments=None, **cfg):
    b = load_bundle(_write(tmp_path / "bundle", accounts, events, payments), now=NOW)
    try:
        return build_evidence(b, EvidenceConfig(**cfg))
    finally:
        b.close()


def _w(ev, a: str, b: str, layer: str) -> float:
    lo, hi = sorted([a, b])
    row = ev.links[(ev.links["account_a"] == lo) & (ev.links["account_b"] == hi) & (ev.links["layer"] == layer)]
    return float(row["weight"].sum())


# --- network ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def network_ev(tmp_path_factory):
    """a000+a001 share a home IP; a010..a024 (15) share a carrier NAT (a hub at hub_cap 10);
    a030..a037 (8) share a busy cafe IP; everyone else is alone."""
    tmp = tmp_path_factory.mktemp("net")
    accs, evs = _background(30)
    rng = np.random.default_rng(1)
    for i in list(range(0, 2)) + list(range(10, 25)) + list(range(30, 38)):
        accs.append(_acc(i))
    for i in range(0, 2):
        for d in range(10):
            evs.append(_ev(f"a{i:03d}", T0 + timedelta(days=d, hours=19 + i), "192.0.2.77", CHAT[d % 6] + f" h{i}{d}"))
    for i in range(10, 25):
        for d in range(6):
            evs.append(_ev(f"a{i:03d}", T0 + timedelta(days=d, seconds=int(rng.integers(0, 86400))), "100.64.0.1",
                           CHAT[d % 6] + f" n{i}{d}"))
    for i in range(30, 38):
        for d in range(6):
            evs.append(_ev(f"a{i:03d}", T0 + timedelta(days=d, seconds=int(rng.integers(0, 86400))), "192.0.2.200",
                           CHAT[d % 6] + f" c{i}{d}"))
    return _build(tmp, accs, evs, hub_cap=10)


def test_network_planted_pair_is_linked_strongly(network_ev):
    assert _w(network_ev, "a000", "a001", "network") > 0.5


def test_network_hub_is_context_not_links(network_ev):
    assert _w(network_ev, "a010", "a011", "network") == 0.0
    ident = network_ev.identifiers.set_index(["kind", "identifier"])
    assert bool(ident.loc[("ip", "100.64.0.1"), "is_hub"])
    assert ident.loc[("ip", "100.64.0.1"), "n_accounts"] == 15
    assert ident.loc[("ip", "100.64.0.1"), "pair_weight"] == 0.0


def test_network_popular_identifier_is_down_weighted(network_ev):
    pair = _w(network_ev, "a000", "a001", "network")
    cafe = _w(network_ev, "a030", "a031", "network")
    assert 0 < cafe < pair / 3
    ident = network_ev.identifiers.set_index(["kind", "identifier"])
    assert ident.loc[("ip", "192.0.2.200"), "pair_weight"] < ident.loc[("ip", "192.0.2.77"), "pair_weight"] / 3


def test_network_unrelated_accounts_are_not_linked(network_ev):
    assert _w(network_ev, "a100", "a101", "network") == 0.0
    assert _w(network_ev, "a000", "a100", "network") == 0.0


# --- payment ------------------------------------------------------------------------------------


def test_payment_shared_prepaid_links_and_type_matters(tmp_path):
    accs, evs = _background(10)
    pays = []
    for i in range(6):
        accs.append(_acc(i))
        evs.append(_ev(f"a{i:03d}", T0 + timedelta(hours=i), f"192.0.2.{i + 1}", CHAT[i]))
    for i in (0, 1, 2):
        pays.append({"account_id": f"a{i:03d}", "instrument_id": "pp-1", "instrument_type": "prepaid_card",
                     "ts": T0.isoformat()})
    for i in (3, 4, 5):
        pays.append({"account_id": f"a{i:03d}", "instrument_id": "card-1", "instrument_type": "card",
                     "ts": T0.isoformat()})
    ev = _build(tmp_path, accs, evs, pays)
    prepaid, card = _w(ev, "a000", "a001", "payment"), _w(ev, "a003", "a004", "payment")
    assert prepaid > card > 0.3
    assert _w(ev, "a000", "a003", "payment") == 0.0
    assert ev.features.set_index("account_id").loc["a000", "prepaid_share"] == 1.0


# --- prompts ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prompt_ev(tmp_path_factory):
    """a000..a003: a fleet wrapping different maths problems in one chain-of-thought template (no two
    prompts identical); a010..a039: 30 strangers who sometimes use a popular translation template."""
    tmp = tmp_path_factory.mktemp("prompt")
    rng = np.random.default_rng(2)
    accs, evs = _background(20)
    for i in range(4):
        accs.append(_acc(i))
        for j in range(8):
            q = MATHS[j % 6].format(a=int(rng.integers(2, 999)), b=int(rng.integers(2, 999)))
            t = T0 + timedelta(days=j, seconds=int(rng.integers(0, 86400)))
            evs.append(_ev(f"a{i:03d}", t, f"192.0.2.{i + 1}", FLEET_PRE + q + FLEET_SUF))
    for i in range(10, 40):
        accs.append(_acc(i))
        for j in range(10):
            t = T0 + timedelta(days=j, seconds=int(rng.integers(0, 86400)))
            text = _chat(rng)
            if j < 2:
                text = "Translate the following text into French, keeping the tone and the formatting:\n\n" + text
            evs.append(_ev(f"a{i:03d}", t, f"203.0.113.{i}", text))
    return _build(tmp, accs, evs)


def test_templated_fleet_linked_though_no_prompt_repeats(prompt_ev):
    fleet = [f"a{i:03d}" for i in range(4)]
    for x in range(4):
        for y in range(x + 1, 4):
            assert _w(prompt_ev, fleet[x], fleet[y], "prompt") > 0.5


def test_popular_template_weighs_little(prompt_ev):
    fleet = _w(prompt_ev, "a000", "a001", "prompt")
    strangers = [_w(prompt_ev, "a010", f"a{j:03d}", "prompt") for j in range(11, 40)]
    assert max(strangers) < fleet / 5


def test_template_table_has_string_ids_and_examples(prompt_ev):
    t = prompt_ev.templates
    assert t["template_id"].map(lambda x: isinstance(x, str) and x[0] in "dht" and len(x) == 16).all()
    fleet_tpl = prompt_ev.uses[(prompt_ev.uses["account_id"] == "a000") & (prompt_ev.uses["kind"] == "template")]
    row = t[t["template_id"].isin(fleet_tpl["identifier"])].iloc[0]
    assert row["n_accounts"] == 4 and len(row["examples"]) >= 2


def test_fleet_features(prompt_ev):
    f = prompt_ev.features.set_index("account_id")
    assert f.loc["a000", "reasoning_share"] == 1.0
    assert f.loc["a010", "reasoning_share"] == 0.0


def test_densify_keeps_full_bins_and_fills_holes():
    e = np.iinfo(np.uint32).max
    sig = np.array([[5, e, e, 7], [e, e, e, e]], dtype=np.uint32)
    out = _densify(sig, e)
    assert out[0, 0] == 5 and out[0, 3] == 7 and e not in out[0]
    assert (out[1] == e).all()


# --- timing -------------------------------------------------------------------------------------


def test_lockstep_pair_linked_and_chance_overlap_not(tmp_path):
    """a000/a001 fire within two seconds of each other 20 times a day apart; a002/a003 both work
    09:00-17:00 like everyone in an office, independently."""
    rng = np.random.default_rng(3)
    accs, evs = _background(10)
    for i in range(4):
        accs.append(_acc(i))
    for d in range(20):
        t = T0 + timedelta(days=d, seconds=int(rng.integers(0, 86400)))
        evs.append(_ev("a000", t, "192.0.2.1", CHAT[d % 6] + f" x{d}"))
        evs.append(_ev("a001", t + timedelta(seconds=1), "192.0.2.2", CHAT[(d + 1) % 6] + f" y{d}"))
        for who, ip in (("a002", "192.0.2.3"), ("a003", "192.0.2.4")):
            for k in range(4):
                t2 = T0 + timedelta(days=d, hours=9, seconds=int(rng.integers(0, 8 * 3600)))
                evs.append(_ev(who, t2, ip, CHAT[k] + f" {who}{d}{k}"))
    ev = _build(tmp_path, accs, evs, timing_window_seconds=10)
    assert _w(ev, "a000", "a001", "timing") > 0.3
    assert _w(ev, "a002", "a003", "timing") < _w(ev, "a000", "a001", "timing") / 3


# --- engine -------------------------------------------------------------------------------------


def test_expand_pairs_share_takes_the_smaller_side():
    df = expand_pairs(np.array([0, 1]), np.array([5, 5]), np.array([1.0, 1.0]), np.zeros(2, "i8"), np.ones(2, "i8"),
                      hub_cap=10, share=np.array([1.0, 0.1]))
    assert df["raw"].tolist() == [pytest.approx(0.1)]


def test_same_input_same_edges(tmp_path):
    accs, evs = _background(25)
    a = _build(tmp_path / "x", accs, evs)
    b = _build(tmp_path / "y", accs, evs)
    pd.testing.assert_frame_equal(a.links, b.links)
    pd.testing.assert_frame_equal(a.identifiers, b.identifiers)
    assert a.templates["template_id"].tolist() == b.templates["template_id"].tolist()


def test_layer_ablation_builds_only_requested_layers(network_ev, tmp_path):
    accs, evs = _background(12)
    ev = _build(tmp_path, accs, evs, layers=("network", "timing"))
    assert set(ev.links["layer"]) <= {"network", "timing"}
    assert ev.graph().vcount() == ev.n_accounts
