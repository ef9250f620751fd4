"""The prompt-fingerprint layer (graphbuild.layers.prompts): same templates as the original
implementation on a demo world, and the pieces it is made of."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from graphbuild.bundle import load_bundle
from graphbuild.layers import prompts as P

PARAMS = dict(perms=64, rows=4, threshold=0.6)


# --- the original implementation, kept verbatim for comparison ---------------------------------

def _old_densify(sig: np.ndarray, empty: int) -> np.ndarray:
    n, n_bins = sig.shape
    full = sig != empty
    col = np.arange(2 * n_bins)
    big = np.iinfo(np.int64).max
    nxt = np.where(np.tile(full, 2), col, big)
    nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1][:, :n_bins]  # next full bin at or after c
    ok = nxt != big
    src = np.where(ok, nxt, 0)
    dist = (src - np.arange(n_bins)).astype(np.uint32)
    vals = np.take_along_axis(sig, src % n_bins, axis=1)
    # the offset keeps values borrowed from different distances distinct
    return np.where(ok, np.where(full, sig, vals + dist), empty).astype(np.uint32)


def _old_group(sig: np.ndarray, rows: int, threshold: float) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, perms = sig.shape
    src, dst = [], []
    for b in range(perms // rows):
        band = np.ascontiguousarray(sig[:, b * rows:(b + 1) * rows]).view(np.dtype((np.void, 4 * rows))).ravel()
        _, first_idx, inv = np.unique(band, return_index=True, return_inverse=True)
        rep = first_idx[inv]
        cand = np.nonzero(rep != np.arange(n))[0]
        if len(cand) == 0:
            continue
        est = (sig[cand] == sig[rep[cand]]).mean(axis=1)
        ok = cand[est >= threshold]
        src.append(ok)
        dst.append(rep[ok])
    if not src:
        return np.arange(n)
    s, d = np.concatenate(src), np.concatenate(dst)
    g = coo_matrix((np.ones(len(s), dtype=np.int8), (s, d)), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _old_skeleton_sql(column: str) -> str:
    x = f"lower({column})"
    x = rf"regexp_replace({x}, '```.*?```', ' ‹code› ', 'gs')"
    x = rf"regexp_replace({x}, 'https?://\S+', ' ‹url› ', 'g')"
    x = rf"regexp_replace({x}, '\"[^\"\n]+\"|“[^”\n]+”|«[^»\n]+»', ' ‹q› ', 'g')"
    x = rf"regexp_replace({x}, '[0-9]+([.,:/][0-9]+)*', '0', 'g')"
    x = rf"trim(regexp_replace({x}, '\s\s+|[\t\n\r\f\v]', ' ', 'g'))"
    return x


def _old_prompt_templates(con, *, perms: int, rows: int, threshold: float, edge_words: int = 8):
    ew = int(edge_words)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE prompt_skel AS
        SELECT prompt, hash(prompt) AS pid, {_old_skeleton_sql('prompt')} AS skeleton
        FROM (SELECT DISTINCT prompt FROM events WHERE prompt IS NOT NULL AND length(trim(prompt)) > 0)
        WHERE length(prompt) - length(replace(replace(prompt, ' ', ''), chr(10), '')) >= {2 * ew - 1}
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE skel AS
        SELECT row_number() OVER (ORDER BY hash(skeleton), skeleton) - 1 AS sid, skeleton, w FROM (
            SELECT skeleton, string_split(skeleton, ' ') AS w FROM (SELECT DISTINCT skeleton FROM prompt_skel)
        ) WHERE len(w) >= {2 * ew}
    """)
    n = con.execute("SELECT count(*) FROM skel").fetchone()[0]
    parts = []
    if n:
        mh = con.execute(f"""
            SELECT sid, CAST(h % {int(perms)} AS INTEGER) AS bin, CAST(min(h >> 32) AS UINTEGER) AS v FROM (
                SELECT sid, hash(w[i] || ' ' || w[i + 1]) AS h FROM (
                    SELECT sid, w, unnest(range(1, len(w))) AS i FROM skel))
            GROUP BY 1, 2
        """).fetchnumpy()
        empty = np.iinfo(np.uint32).max
        sig = np.full((n, perms), empty, dtype=np.uint32)
        sig[mh["sid"].astype(np.int64), mh["bin"].astype(np.int64)] = np.minimum(mh["v"].astype(np.uint32), empty - 1)
        del mh
        sig = _old_densify(sig, empty)
        comp = _old_group(sig, rows, threshold)
        con.register("_skel_comp", pd.DataFrame({"sid": np.arange(n, dtype=np.int64), "comp": comp}))
        parts.append("""
            SELECT s.skeleton, m.canonical, 'd' AS fam
            FROM skel s JOIN _skel_comp c USING (sid) JOIN (
                SELECT c2.comp, min(s2.skeleton) AS canonical FROM skel s2 JOIN _skel_comp c2 USING (sid)
                GROUP BY c2.comp) m ON m.comp = c.comp""")
        parts.append(f"""
            SELECT skeleton, array_to_string(w[1:{ew}], ' ') || ' …', 'h' FROM skel""")
        parts.append(f"""
            SELECT skeleton, '… ' || array_to_string(w[len(w) - {ew - 1}:], ' '), 't' FROM skel""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _skel_tpl AS
            SELECT skeleton, fam || substr(md5(fam || chr(0) || canonical), 1, 15) AS template_id, canonical
            FROM ({" UNION ALL ".join(parts)}) AS t(skeleton, canonical, fam)
        """)
        con.unregister("_skel_comp")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _skel_tpl (skeleton VARCHAR, template_id VARCHAR, canonical VARCHAR)")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE prompt_template AS
        SELECT p.prompt, p.pid, p.skeleton, t.template_id, t.canonical FROM prompt_skel p JOIN _skel_tpl t USING (skeleton)
    """)
    con.execute("DROP TABLE IF EXISTS _skel_tpl")
    con.execute("DROP TABLE IF EXISTS skel")
    uses = con.execute("""
        SELECT e.account_id, 'template' AS kind, t.template_id AS identifier, count(*) AS n_events,
               epoch(min(e.ts))::BIGINT AS first, epoch(max(e.ts))::BIGINT AS last
        FROM (SELECT account_id, ts, hash(prompt) AS pid FROM events WHERE prompt IS NOT NULL) e
        JOIN (SELECT pid, template_id FROM prompt_template) t USING (pid)
        GROUP BY e.account_id, t.template_id
        HAVING count(DISTINCT t.pid) >= 2 OR (count(*) >= 2 AND NOT (t.template_id LIKE 'h%' OR t.template_id LIKE 't%'))
    """).df()
    templates = con.execute("""
        SELECT template_id, min(canonical) AS skeleton, count(DISTINCT prompt) AS n_prompts_distinct
        FROM prompt_template GROUP BY template_id
    """).df()
    return uses, templates


# --- helpers ----------------------------------------------------------------------------------

OLD_EXAMPLES = """
    SELECT template_id, list(prompt ORDER BY prompt)[1:3] AS examples FROM (
        SELECT template_id, prompt, row_number() OVER (PARTITION BY template_id ORDER BY hash(prompt), prompt) AS r
        FROM prompt_template) WHERE r <= 3 GROUP BY template_id ORDER BY template_id
"""


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys, ignore_index=True)


def _table(con) -> pd.DataFrame:
    return con.execute("SELECT prompt, pid, skeleton, template_id, canonical FROM prompt_template "
                       "ORDER BY pid, prompt, template_id").df()


def _events_con(prompts: list[str | None], accounts: list[str] | None = None):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    accounts = accounts or [f"a{i % 7}" for i in range(len(prompts))]
    con.register("_e", pd.DataFrame({"account_id": accounts, "i": np.arange(len(prompts)),
                                     "prompt": pd.Series(prompts, dtype=object)}))
    con.execute("CREATE TABLE events AS SELECT account_id, TIMESTAMP '2026-10-01' + to_seconds(i * 60) AS ts, "
                "CAST(prompt AS VARCHAR) AS prompt FROM _e")
    con.unregister("_e")
    return con


# --- the same results as the original on a demo world ---------------------------------------------

@pytest.fixture(scope="module")
def world_1500(tmp_path_factory):
    from hydrascope.demo.world import generate_world

    out = tmp_path_factory.mktemp("prompts") / "world"
    generate_world(out, n_accounts=1500, seed=0, fmt="parquet")
    return out


@pytest.fixture(scope="module")
def old_and_new(world_1500):
    b = load_bundle(world_1500, now="2027-01-01")
    try:
        con = b.con
        old_uses, old_tpl = _old_prompt_templates(con, **PARAMS)
        old_table, old_examples = _table(con), con.execute(OLD_EXAMPLES).df()
        con.execute("DROP TABLE prompt_template")
        stats: dict = {}
        uses, tpl = P.prompt_templates(con, **PARAMS, stats=stats)
        new_table, new_examples = _table(con), con.execute(OLD_EXAMPLES).df()
        helper = P.template_examples(con)
        # a second run on the same connection replaces everything cleanly
        uses2, tpl2 = P.prompt_templates(con, **PARAMS, chunk=997)
        yield dict(old=(old_uses, old_tpl, old_table, old_examples), new=(uses, tpl, new_table, new_examples),
                   helper=helper, again=(uses2, tpl2), stats=stats)
    finally:
        b.close()


def test_demo_world_uses_identical_to_original(old_and_new):
    old, new = old_and_new["old"][0], old_and_new["new"][0]
    keys = ["account_id", "identifier"]
    assert len(new) > 1000 and new["identifier"].str[0].isin(["d", "h", "t"]).all()
    pd.testing.assert_frame_equal(_sorted(new, keys), _sorted(old, keys), check_dtype=False)
    assert new.equals(_sorted(new, keys))  # already in a fixed order


def test_demo_world_templates_identical_to_original(old_and_new):
    old, new = old_and_new["old"][1], old_and_new["new"][1]
    assert len(new) > 100
    pd.testing.assert_frame_equal(new, _sorted(old, ["template_id"]), check_dtype=False)


def test_demo_world_prompt_template_relation_identical(old_and_new):
    old_table, new_table = old_and_new["old"][2], old_and_new["new"][2]
    assert len(new_table) > 1000
    pd.testing.assert_frame_equal(new_table, old_table, check_dtype=False)
    pd.testing.assert_frame_equal(old_and_new["new"][3], old_and_new["old"][3])


def test_template_examples_helper_matches_the_query(old_and_new):
    pd.testing.assert_frame_equal(old_and_new["helper"], old_and_new["old"][3])


def test_chunk_size_and_rerun_do_not_change_results(old_and_new):
    uses, tpl = old_and_new["new"][:2]
    uses2, tpl2 = old_and_new["again"]
    pd.testing.assert_frame_equal(uses2, uses)
    pd.testing.assert_frame_equal(tpl2, tpl)


def test_stats_report_steps_and_counts(old_and_new):
    s = old_and_new["stats"]
    assert {"distinct prompts", "skeletons", "shingle hashing", "banding", "uses"} <= set(s["seconds"])
    c = s["counts"]
    assert c["prompts_eligible"] >= c["skeletons_eligible"] > 0
    assert c["uses"] == len(old_and_new["new"][0])


# --- pieces -------------------------------------------------------------------------------------

TRICKY = [
    "Look at \"this\"  and “that” and «le truc» then ```code\nblock``` now",
    "see https://example.com/a?b=1 and http://x.y  twice\t\ttabs\r\nwindows",
    "numbers 1,234.5 and 12:30 and 3/4 and 1..2 and v2.0.1 and 7. end",
    "  leading and trailing  \n",
    "vertical\x0btab \x0b mixed \x0c\x0bform",
    "unbalanced \"quote\nacross lines\" here",
    "ÄÖÜ İstanbul ΣΊΣΥΦΟΣ ﬁ ligature",
    "```never closed code",
    "",
    "\u00a0 non-breaking and ideographic spaces around\u3000",
    " \u2008 ends in a letter é",
    "ends in a vertical tab\x0b",
    "ends in a digit 42",
    "\u3000",
    "« quoted » then  spaces  ",
]


def test_guarded_masking_equals_the_plain_regexes():
    con = duckdb.connect()
    con.register("_t", pd.DataFrame({"prompt": TRICKY}))
    steps = P._skeleton_steps("prompt")
    q = f"SELECT prompt, {steps[0]} AS x FROM _t"
    for s in steps[1:]:
        q = f"SELECT prompt, {s} AS x FROM ({q})"
    got = con.execute(f"SELECT x FROM ({q}) ORDER BY prompt").fetchall()
    want = con.execute(f"SELECT {_old_skeleton_sql('prompt')} FROM _t ORDER BY prompt").fetchall()
    also = con.execute(f"SELECT {P.skeleton_sql('prompt')} FROM _t ORDER BY prompt").fetchall()
    assert got == want == also
    assert any("‹code›" in g[0] and "‹q›" in g[0] for g in got)


def test_group_matches_the_original_banding():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 50, size=(40, 64)).astype(np.uint32)
    # near-duplicates of a few bases, so buckets collide and estimates straddle the threshold
    sig = base[rng.integers(0, 40, size=3000)].copy()
    flip = rng.random(sig.shape) < rng.uniform(0.0, 0.6, size=(3000, 1))
    sig[flip] = rng.integers(0, 50, size=int(flip.sum())).astype(np.uint32)
    new, old = P._group(sig, 4, 0.6), _old_group(sig, 4, 0.6)
    # same partition (component labels may be numbered differently)
    assert len(np.unique(old)) < 3000
    pairs = pd.DataFrame({"o": old, "n": new}).drop_duplicates()
    assert not pairs["o"].duplicated().any() and not pairs["n"].duplicated().any()


def test_no_long_prompts_gives_empty_results():
    con = _events_con(["hi", "short text", None, "   "])
    uses, tpl = P.prompt_templates(con, **PARAMS)
    assert uses.empty and tpl.empty and list(uses.columns) == ["account_id", "kind", "identifier", "n_events",
                                                               "first", "last"]
    assert con.execute("SELECT count(*) FROM prompt_template").fetchone()[0] == 0
    assert P.template_examples(con).empty


def test_reuse_rules_on_a_small_example():
    """a0 sends one wrapper around two problems (opening/closing reused); a1 sends one long text
    twice (near-duplicate group reused, but not its opening: one prompt only); a2 sends it once."""
    wrap = ("please solve the following problem and think step by step showing every single "
            "intermediate step of your reasoning: {} then end with final answer and nothing else "
            "after that line please thanks")
    same = "tell me a very long story about a dragon who lives under a mountain and counts gold coins every night"
    prompts = [wrap.format("what is two plus two"), wrap.format("how many legs do three spiders have"),
               same, same, same]
    con = _events_con(prompts, ["a0", "a0", "a1", "a1", "a2"])
    uses, tpl = P.prompt_templates(con, **PARAMS)
    got = {(r.account_id, r.identifier[0]): r.n_events for r in uses.itertuples()}
    assert got[("a0", "h")] == 2 and got[("a0", "t")] == 2
    assert got[("a1", "d")] == 2 and ("a1", "h") not in got and ("a2", "d") not in got
    old_con = _events_con(prompts, ["a0", "a0", "a1", "a1", "a2"])
    old_uses, old_tpl = _old_prompt_templates(old_con, **PARAMS)
    keys = ["account_id", "identifier"]
    pd.testing.assert_frame_equal(uses, _sorted(old_uses, keys), check_dtype=False)
    pd.testing.assert_frame_equal(tpl, _sorted(old_tpl, ["template_id"]), check_dtype=False)


def test_a_later_temporary_table_of_the_same_name_is_allowed():
    """The Spark engine replaces prompt_template by a temporary table in the same connection."""
    con = _events_con(["one two three four five six seven eight nine ten eleven twelve thirteen "
                       "fourteen fifteen sixteen seventeen"] * 2)
    P.prompt_templates(con, **PARAMS)
    n = con.execute("SELECT count(*) FROM prompt_template").fetchone()[0]
    assert n == 3
    con.execute("CREATE OR REPLACE TEMP TABLE prompt_template AS SELECT 1 AS x")
    assert con.execute("SELECT * FROM prompt_template").fetchall() == [(1,)]
    P.prompt_templates(con, **PARAMS)  # and back again
    assert con.execute("SELECT count(*) FROM prompt_template").fetchone()[0] == n


def test_template_examples_filters_and_validates():
    con = _events_con([f"variant {i} of the same wrapper asking to think step by step about problem "
                       f"number {i} and to show all the working in full detail please" for i in range(6)])
    P.prompt_templates(con, **PARAMS)
    ex = P.template_examples(con)
    assert len(ex) >= 1 and (ex["examples"].map(len) <= 3).all()
    one = P.template_examples(con, [ex["template_id"].iloc[0], "nope"], k=2)
    assert list(one["template_id"]) == [ex["template_id"].iloc[0]] and len(one["examples"].iloc[0]) <= 2
    with pytest.raises(ValueError, match="k must be at least 1"):
        P.template_examples(con, k=0)


def test_events_as_a_view_gives_the_same_results():
    """Without a rowid (events is a view) the texts are found by grouping them instead."""
    wrap = ("please solve the following problem and think step by step showing every single "
            "intermediate step of your reasoning: {} then end with final answer and nothing else")
    prompts = [wrap.format(p) for p in ("what is two plus two", "how many legs do three spiders have",
                                        "what is two plus two")] + ["a short one", None]
    accounts = ["a0", "a0", "a1", "a1", "a2"]
    table = _events_con(prompts, accounts)
    want = P.prompt_templates(table, **PARAMS)
    view = _events_con(prompts, accounts)
    view.execute("ALTER TABLE events RENAME TO events_t")
    view.execute("CREATE VIEW events AS SELECT * FROM events_t")
    got = P.prompt_templates(view, **PARAMS)
    assert len(want[0]) >= 2
    for g, w in zip(got, want):
        pd.testing.assert_frame_equal(g, w)
    pd.testing.assert_frame_equal(_table(view), _table(table))


def test_a_stored_prompt_hash_column_is_used_as_the_key():
    """With events.prompt_hash = hash(prompt) the results are the same; a wrong column shows it is read."""
    wrap = ("please solve the following problem and think step by step showing every single "
            "intermediate step of your reasoning: {} then end with final answer and nothing else")
    prompts = [wrap.format(p) for p in ("what is two plus two", "how many legs do three spiders have")] * 2
    accounts = ["a0", "a0", "a1", "a1"]
    plain = _events_con(prompts, accounts)
    want = P.prompt_templates(plain, **PARAMS)
    keyed = _events_con(prompts, accounts)
    keyed.execute("ALTER TABLE events ADD COLUMN prompt_hash UBIGINT")
    keyed.execute("UPDATE events SET prompt_hash = hash(prompt)")
    got = P.prompt_templates(keyed, **PARAMS)
    for g, w in zip(got, want):
        pd.testing.assert_frame_equal(g, w)
    keyed.execute("UPDATE events SET prompt_hash = 7")  # every prompt one key: no two different prompts
    uses, _ = P.prompt_templates(keyed, **PARAMS)
    assert not uses["identifier"].str.startswith(("h", "t")).any()


# --- the scale paths: word counts by regex, uses grouped in NumPy --------------------------------

def _old_n_space(x: str, chars: str = " \n") -> str:
    y = x
    for c in chars:
        y = f"replace({y}, chr({ord(c)}), '')"
    return f"(strlen({x}) - strlen({y}))"


def test_at_least_equals_counting_separators():
    rng = np.random.default_rng(3)
    pieces = ["a", "bb", " ", "\n", "\t", "é", "\u3000", "\u00a0", "  ", "\n\n", "x y"]
    texts = TRICKY + ["".join(rng.choice(pieces, size=rng.integers(0, 40))) for _ in range(400)]
    texts += [" " * 15, " " * 14 + "a", "\u00a0" + " " * 20, "\n" * 15, " \n" * 8]
    con = duckdb.connect()
    con.register("_t", pd.DataFrame({"prompt": texts}))
    for k in (0, 1, 3, 15):
        got = con.execute(f"SELECT {P._at_least('prompt', k, ' ' + chr(92) + 'n')} FROM _t").fetchall()
        want = con.execute(f"SELECT {_old_n_space('prompt')} >= {k} FROM _t").fetchall()
        assert got == want
    # the whole eligibility test of step 2, blank texts included
    seps = P._at_least("prompt", 15, " " + chr(92) + "n")
    new = (f"CASE WHEN n <= 0 THEN NULL WHEN NOT {seps} THEN false "
           "WHEN ascii(prompt) BETWEEN 33 AND 126 THEN true ELSE strlen(trim(prompt)) > 0 END")
    old = (f"CASE WHEN n > 0 THEN ({_old_n_space('left(prompt, 160)')} >= 15 "
           f"OR {_old_n_space('prompt')} >= 15) AND strlen(trim(prompt)) > 0 END")
    rows = con.execute(f"SELECT {new}, {old} FROM (SELECT prompt, 1 AS n FROM _t)").fetchall()
    assert all(a == b for a, b in rows) and sum(a for a, _ in rows) > 10


def _two_wrappers():
    wrap = ("please solve the following problem and think step by step showing every single "
            "intermediate step of your reasoning: {} then end with final answer and nothing else")
    prompts = [wrap.format(p) for p in ("what is two plus two", "how many legs do three spiders have",
                                        "what is two plus two", "name three primes")] * 3
    accounts = ["a0", "a0", "a1", "a1", "a2", "a0", "a1", "a3", "a2", "a2", "a3", "a1"]
    return prompts, accounts


def test_uses_with_the_evidence_account_table_are_the_same():
    """``_acc`` (the evidence stage's numbering) is used when present; one that misses accounts,
    or numbers them in another order, gives the same uses."""
    prompts, accounts = _two_wrappers()
    want = P.prompt_templates(_events_con(prompts, accounts), **PARAMS)
    assert len(want[0]) >= 4
    for acc in ("SELECT account_id, (row_number() OVER (ORDER BY account_id) - 1)::INTEGER AS acc "
                "FROM (SELECT DISTINCT account_id FROM events)",
                "SELECT account_id, (row_number() OVER (ORDER BY account_id DESC))::INTEGER AS acc "
                "FROM (SELECT DISTINCT account_id FROM events WHERE account_id <> 'a2')"):
        con = _events_con(prompts, accounts)
        con.execute(f"CREATE TEMP TABLE _acc AS {acc}")
        got = P.prompt_templates(con, **PARAMS, chunk=1)  # one account per NumPy chunk
        for g, w in zip(got, want):
            pd.testing.assert_frame_equal(g, w)


def test_uses_with_null_accounts_or_times_match_the_original():
    """Events with no account or no time are grouped by SQL, as the original did."""
    prompts, accounts = _two_wrappers()
    for change in ("UPDATE events SET account_id = NULL WHERE i IN (0, 5)",
                   "UPDATE events SET ts = NULL WHERE i IN (2, 6)",
                   "UPDATE events SET ts = NULL WHERE account_id = 'a2'"):
        con, old_con = _events_con(prompts, accounts), _events_con(prompts, accounts)
        for c in (con, old_con):
            c.execute("ALTER TABLE events ADD COLUMN i INTEGER")
            c.execute("UPDATE events SET i = (epoch(ts)::BIGINT - epoch(TIMESTAMP '2026-10-01')::BIGINT) // 60")
            c.execute(change)
        uses, tpl = P.prompt_templates(con, **PARAMS)
        old_uses, old_tpl = _old_prompt_templates(old_con, **PARAMS)
        pd.testing.assert_frame_equal(uses, _sorted(old_uses, ["account_id", "identifier"]), check_dtype=False)
        pd.testing.assert_frame_equal(tpl, _sorted(old_tpl, ["template_id"]), check_dtype=False)
        assert len(uses) >= 3


def test_reused_groups_by_sort_with_and_without_packing():
    rng = np.random.default_rng(5)
    key = rng.integers(0, 50, size=2000).astype(np.int64)
    q = rng.integers(0, 3, size=2000).astype(np.int64)
    s = rng.integers(0, 10_000, size=2000).astype(np.int64)
    df = pd.DataFrame({"key": key, "q": q, "s": s})[key > 0]
    g = df.groupby("key").agg(n=("s", "size"), first=("s", "min"), last=("s", "max"), nq=("q", "nunique"))
    for is_group, keep in ((True, g["n"] >= 2), (False, g["nq"] >= 2)):
        want = g[keep]
        for base in (0, 1 << 55):  # the second too wide to pack the row number under the key
            got = P._reused(np.where(key > 0, key + base, 0), q, s, is_group)
            assert np.array_equal(got[0] - base, want.index.to_numpy())
            assert np.array_equal(got[1], want["n"].to_numpy())
            assert np.array_equal(got[2], want["first"].to_numpy())
            assert np.array_equal(got[3], want["last"].to_numpy())
