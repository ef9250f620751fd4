"""Prompt layer: templates found by masking variable parts and grouping near-duplicate skeletons.

Steps, all over *distinct* prompts (deduplicated first, so a fleet sending one text 10,000
times costs one hash):

1. normalise — lower-case; code blocks, quoted spans, URLs and numbers are masked
   (``‹code›``, ``‹q›``, ``‹url›``, ``0``); whitespace collapsed. What is left is the
   prompt's *skeleton*.
2. fingerprint — one-permutation MinHash with rotation densification (Li, Owen & Zhang 2012;
   Shrivastava & Li 2014) over word-bigram shingles of the skeleton: one hashing pass in
   DuckDB instead of 64, no Python loop over prompts.
3. group — LSH banding proposes candidates; a candidate joins its bucket's first member only
   when their estimated Jaccard similarity reaches ``template_jaccard``; connected components
   of those links are *templates*. A chain-of-thought wrapper around different maths problems
   shares most of its bigrams, so its prompts fall into one template though no two are equal.
4. besides the near-duplicate group, the first and last ``edge_words`` words of a long
   skeleton are fingerprints of their own (a wrapper's opening and closing).
5. the template id is a hash of the group's smallest skeleton: stable across runs.

How much a shared template weighs is decided by rarity (graphbuild.weighting): a template used
by thousands of unrelated people ("Translate the following text into French: …") gives each
pair almost nothing, and beyond ``hub_cap`` sharers it is context only.

Scale: the events are read in three passes that hold no texts in hash tables — the prompt key
``hash(prompt)`` with its event count and first row, the text at that row (once per distinct
prompt), and one row of integers per event of a reusable template (account number — from the
evidence stage's ``_acc`` when it exists —, skeleton number, prompt number, second). Those rows
are grouped in NumPy by ranges of accounts: per fingerprint family one sort of packed integer
keys, after which the many single events (never a reuse) are dropped before any other column is
read; no hash table of (account, template) groups is built. Everything else runs on distinct
prompts and skeletons, keyed by integers, in chunks of bounded size; a skeleton is hashed and
split once, and word counts stop at the count that matters. The texts are stored once:
``prompt_template`` is a view over normalised tables.
"""

from __future__ import annotations

import time

import duckdb
import numpy as np
import pandas as pd

from graphbuild.layers._sql import events_is_table, prompt_key

__all__ = ["prompt_templates", "template_examples", "skeleton_sql", "REASONING_PATTERN", "JAILBREAK_PATTERN"]

#: Prompts that ask the model to expose step-by-step reasoning (RE2 syntax, case-insensitive).
REASONING_PATTERN = (
    r"step[- ]by[- ]step|chain[- ]of[- ]thought|show (all |your |each )*(work|working|reasoning|steps)"
    r"|explain (your|the|each) (reasoning|steps|thought)|think (carefully|it through|through)"
    r"|reason(ing)? (carefully|through|step)|<thinking>|<reasoning>|let'?s think|walk me through"
    r"|full (reasoning|derivation|solution path)|internal (monologue|reasoning)|thought process"
    r"|reasoning (trace|process)|worked(-out)? solution|(each|every) (reasoning )?step|think(ing)? out loud"
)
#: Common markers of in-the-wild jailbreak prompts.
JAILBREAK_PATTERN = (
    r"\bdan\b|do anything now|developer mode|jailbr(oken|eak)|ignore (all |any )?(the )?(previous|prior|above) (instructions|rules)"
    r"|no (ethical|moral) (guidelines|restrictions|constraints)|without (any )?(restrictions|filters|censorship)"
    r"|unfiltered|uncensored|stay in character|anti-?gpt|\baim\b|opposite mode|evil (confidant|bot)"
    r"|content polic(y|ies)|break (free|character)|not bound by"
)

_CODE = r"'```.*?```', ' ‹code› ', 'gs'"
_URL = r"'https?://\S+', ' ‹url› ', 'g'"
# line-bounded rather than {1,300}: RE2 compiles bounded repeats into large automata (2x slower)
_QUOTE = r"'\"[^\"\n]+\"|“[^”\n]+”|«[^»\n]+»', ' ‹q› ', 'g'"
_NUMBER = r"'[0-9]+([.,:/][0-9]+)*', '0', 'g'"
# only runs of 2+ whitespace or non-space whitespace need replacing (same result, far fewer matches)
_SPACE = r"'\s\s+|[\t\n\r\f\v]', ' ', 'g'"


def skeleton_sql(column: str) -> str:
    """DuckDB SQL expression giving the masked skeleton of a prompt column."""
    x = f"lower({column})"
    for pattern in (_CODE, _URL, _QUOTE, _NUMBER):
        x = f"regexp_replace({x}, {pattern})"
    return f"trim(regexp_replace({x}, {_SPACE}))"


def _skeleton_steps(column: str) -> list[str]:
    """The masking of :func:`skeleton_sql` as successive expressions over ``x``, each guarded.

    A pattern that needs a literal (three backticks, ``://``, a quote character) is only run on
    texts that contain it: ``contains`` is a byte search, far cheaper than a regex pass, and a
    pattern cannot match a text without its literal, so the result is the same.
    """
    q = "(contains(x, '\"') OR contains(x, '“') OR contains(x, '«'))"
    return [
        f"lower({column})",
        f"CASE WHEN contains(x, '```') THEN regexp_replace(x, {_CODE}) ELSE x END",
        f"CASE WHEN contains(x, '://') THEN regexp_replace(x, {_URL}) ELSE x END",
        f"CASE WHEN {q} THEN regexp_replace(x, {_QUOTE}) ELSE x END",
        f"regexp_replace(x, {_NUMBER})",
        f"regexp_replace(x, {_SPACE})",
        # trim() walks the whole text; one that starts and ends with a visible ASCII character
        # has nothing to trim (the end is found by a regex anchored there, which RE2 runs backwards)
        "CASE WHEN ascii(x) BETWEEN 33 AND 126 AND regexp_matches(x, '[!-~]$') THEN x ELSE trim(x) END",
    ]


def _at_least(x: str, k: int, chars: str) -> str:
    """SQL: whether the text ``x`` holds at least ``k`` of the characters ``chars`` (regex class
    syntax), found by one anchored regex that stops at the ``k``-th instead of counting them all."""
    if k <= 0:
        return "true"
    return f"regexp_matches({x}, '^(?:[^{chars}]*[{chars}]){{{int(k)}}}')"


def _densify(sig: np.ndarray, empty: int) -> np.ndarray:
    """Fill empty one-permutation bins from the next non-empty bin to the right, circularly.

    Rotation densification (Shrivastava & Li, 2014): two documents then agree on an empty bin
    exactly when they agree on the bin it borrows from, which keeps the collision probability of
    every bin equal to the Jaccard similarity. A bin borrowing from ``d`` bins on gets the value
    plus ``d`` (modulo 2**32), so values borrowed from different distances stay distinct.
    """
    n, n_bins = sig.shape
    if n_bins > 127:
        raise ValueError(f"at most 127 bins per signature, got {n_bins}")
    full = sig != empty
    none = np.uint8(255)
    # next full bin at or after c, over the row written out twice (so it wraps around)
    nxt = np.where(np.tile(full, 2), np.arange(2 * n_bins, dtype=np.uint8), none)
    nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1][:, :n_bins]
    ok = nxt != none
    src = np.where(ok, nxt, 0).astype(np.intp)
    dist = (src - np.arange(n_bins)).astype(np.uint32)
    vals = np.take_along_axis(sig, src % n_bins, axis=1)
    return np.where(ok, np.where(full, sig, vals + dist), empty).astype(np.uint32)


def _band_buckets(band: np.ndarray) -> np.ndarray:
    """For each row, the first (lowest) row with the same band values."""
    n, width = band.shape
    key = None
    for j in range(0, width, 2):
        part = band[:, j].astype(np.uint64) << np.uint64(32)
        if j + 1 < width:
            part |= band[:, j + 1].astype(np.uint64)
        codes, uniques = pd.factorize(part, sort=False)
        key = codes.astype(np.int64) if key is None else pd.factorize(key * len(uniques) + codes, sort=False)[0]
    if width <= 2:
        key = pd.factorize(key, sort=False)[0]
    # factorize numbers groups in order of first appearance: a group starts where its code
    # exceeds every earlier code
    g = key.astype(np.int64)
    starts = np.flatnonzero(np.r_[True, g[1:] > np.maximum.accumulate(g)[:-1]]) if n else np.zeros(0, np.int64)
    return starts[g]


def _group(sig: np.ndarray, rows: int, threshold: float) -> np.ndarray:
    """Connected components of LSH candidates whose estimated Jaccard reaches ``threshold``.

    In each band, every row is compared with the first (lowest-numbered) row of its bucket.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, perms = sig.shape
    src, dst = [], []
    idx = np.arange(n)
    for b in range(perms // rows):
        rep = _band_buckets(sig[:, b * rows:(b + 1) * rows])
        cand = np.nonzero(rep != idx)[0]
        if len(cand) == 0:
            continue
        est = np.zeros(len(cand))
        for lo in range(0, len(cand), 1 << 18):  # bounded temporaries
            c = cand[lo:lo + (1 << 18)]
            est[lo:lo + len(c)] = (sig[c] == sig[rep[c]]).mean(axis=1)
        ok = cand[est >= threshold]
        src.append(ok)
        dst.append(rep[ok])
    if not src:
        return np.arange(n)
    s, d = np.concatenate(src), np.concatenate(dst)
    g = coo_matrix((np.ones(len(s), dtype=np.int8), (s, d)), shape=(n, n))
    return connected_components(g, directed=False)[1]


class _Steps:
    """Wall and CPU seconds per step, written into a caller's dict (or nowhere)."""

    def __init__(self, stats: dict | None):
        self.stats = stats
        self.name, self.t0, self.c0 = None, 0.0, 0.0

    def start(self, name: str | None) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        if self.stats is not None and self.name is not None:
            self.stats.setdefault("seconds", {})[self.name] = now - self.t0
            self.stats.setdefault("cpu_seconds", {})[self.name] = cpu - self.c0
        self.name, self.t0, self.c0 = name, now, cpu

    def count(self, con, name: str, sql: str) -> None:
        """Record ``sql``'s single value as count ``name``; its time is left out of the step."""
        if self.stats is not None:
            t, c = time.perf_counter(), time.process_time()
            self.stats.setdefault("counts", {})[name] = con.execute(sql).fetchone()[0]
            self.t0 += time.perf_counter() - t
            self.c0 += time.process_time() - c


def _drop(con, name: str) -> None:
    """Drop the view or table ``name`` from the temporary schema and this database's ``main``."""
    found = con.execute("""
        SELECT database_name, schema_name, 'TABLE' FROM duckdb_tables() WHERE table_name = $1
        UNION ALL SELECT database_name, schema_name, 'VIEW' FROM duckdb_views() WHERE view_name = $1 AND NOT internal
    """, [name]).fetchall()
    for db, schema, kind in found:
        if db == "temp" or (db == con.execute("SELECT current_database()").fetchone()[0] and schema == "main"):
            con.execute(f'DROP {kind} IF EXISTS "{db}"."{schema}"."{name}"')


def _account_numbers(con, from_events: bool = False) -> bool:
    """Create ``_pt_acc(account_id, a)``: the accounts numbered 0, 1, … in ``account_id`` order.

    From the evidence stage's account table ``_acc`` when there is one (no pass over the
    events), else (or with ``from_events``) from the events' distinct non-NULL accounts.
    Returns whether ``_acc`` was used.
    """
    has_acc = not from_events and con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = '_acc' AND database_name = 'temp' "
        "AND column_name = 'account_id'").fetchall()[0][0] > 0
    src = "_acc" if has_acc else "events"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _pt_acc AS
        SELECT account_id, (row_number() OVER (ORDER BY account_id) - 1)::INTEGER AS a
        FROM (SELECT DISTINCT account_id FROM {src} WHERE account_id IS NOT NULL)
    """)
    return has_acc


def _reused(key: np.ndarray, q: np.ndarray, s: np.ndarray, is_group: bool) -> tuple[np.ndarray, ...]:
    """The groups of one fingerprint family that count as a use.

    ``key`` numbers each event's (account, template) group, 0 for events outside the family;
    ``q`` and ``s`` are the events' prompt numbers and epoch seconds. A group counts when it
    holds two different prompts, or (near-duplicate groups, ``is_group``) two events.
    Returns (key, n_events, first, last) of those groups, sorted by key.
    """
    n = len(key)
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return empty, empty, empty, empty
    bits = (n - 1).bit_length()
    if int(key.max()).bit_length() + bits <= 63:
        # the row number packed under the key: a plain sort instead of an argsort
        packed = (key << bits) | np.arange(n, dtype=np.int64)
        packed.sort()
        order = packed & ((1 << bits) - 1)
        np.right_shift(packed, bits, out=packed)
        key = packed
    else:
        order = np.argsort(key)
        key = key[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(key[1:], key[:-1], out=new[1:])
    start = np.flatnonzero(new)
    size = np.diff(start, append=n)
    # a single event is never a reuse: most groups end here, before the times are read
    big = (size >= 2) & (key[start] > 0)
    rows = order[np.repeat(big, size)]
    key, size = key[start[big]], size[big]
    if not len(size):
        return empty, empty, empty, empty
    at = np.zeros(len(size), dtype=np.int64)
    np.cumsum(size[:-1], out=at[1:])
    if is_group:
        ok = slice(None)
    else:
        qq = q[rows]
        ok = np.minimum.reduceat(qq, at) != np.maximum.reduceat(qq, at)
        del qq
    ss = s[rows]
    return key[ok], size[ok].astype(np.int64), np.minimum.reduceat(ss, at)[ok], np.maximum.reduceat(ss, at)[ok]


def _uses(con, pkey: str, n_sid: int, n_tid: int, fam: dict, *, rows: int, st: "_Steps") -> pd.DataFrame:
    """Each account's template uses (see :func:`prompt_templates`), from one pass over the events.

    Every event of a prompt with a reusable template becomes one row (account number, skeleton
    number, prompt number, epoch second) of a temporary table; the rows are then grouped in
    NumPy, about ``rows`` at a time by ranges of accounts, once per fingerprint family (each
    skeleton has at most one template per family). An (account, template) group needs two
    events to count, so the many single events are dropped after one sort of integer keys.
    Events with a NULL time or account are grouped by SQL instead (:func:`_uses_sql`).
    """
    sid, tid, letter = (np.asarray(fam[c]) for c in ("sid", "tid", "family"))
    maps = []
    for f in "dht":
        m = np.full(n_sid, -1, dtype=np.int64)
        here = letter == ord(f)
        m[sid[here]] = tid[here]
        maps.append((m, f == "d"))
    used = np.zeros(n_sid, dtype=bool)
    used[sid] = True
    con.register("_pt_keep", pd.DataFrame({"sid": np.flatnonzero(used).astype(np.int32)}))
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pt_key AS
        SELECT p.pid, p.sid, p.rowid::INTEGER AS q, p.n FROM _pt_prompt p SEMI JOIN _pt_keep k USING (sid)
    """)
    con.unregister("_pt_keep")
    want = con.execute("SELECT coalesce(sum(n), 0)::BIGINT FROM _pt_key").fetchall()[0][0]
    cols = None
    for numbering in ("given", "events"):
        given = _account_numbers(con, from_events=numbering == "events")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _pt_ev AS
            SELECT c.a, k.sid, k.q, epoch(e.ts)::BIGINT AS s
            FROM (SELECT account_id, ts, {pkey} AS pid FROM events WHERE prompt IS NOT NULL) e
            JOIN _pt_key k USING (pid) JOIN _pt_acc c USING (account_id)
        """)
        per_acc = con.execute("SELECT a, count(*) AS k, count(s) AS ks FROM _pt_ev GROUP BY a").fetchnumpy()
        pa, pk = np.asarray(per_acc["a"]), np.asarray(per_acc["k"])
        if (pk != np.asarray(per_acc["ks"])).any():
            break  # an event with no time
        if pk.sum() != want:
            if given:
                continue  # an account the given table does not know: numbered from the events
            break  # an event with no account
        n_acc = con.execute("SELECT count(*) FROM _pt_acc").fetchall()[0][0]
        cum = np.zeros(n_acc + 1, dtype=np.int64)
        cum[pa + 1] = pk
        np.cumsum(cum, out=cum)  # cum[a] = events of the accounts before a
        st.start("uses grouping")
        parts = []
        lo = 0
        while lo < n_acc:
            hi = min(max(int(np.searchsorted(cum, cum[lo] + rows, side="right")) - 1, lo + 1), n_acc)
            d = con.execute("SELECT a, sid, q, s FROM _pt_ev WHERE a >= $1 AND a < $2", [lo, hi]).fetchnumpy()
            a, sk, q, s = (np.asarray(d[c]) for c in ("a", "sid", "q", "s"))
            del d
            a = a.astype(np.int64) - lo
            res = []
            for m, grp in maps:
                t = m[sk]
                # key 0 is no template of this family
                key = np.where(t >= 0, a * n_tid + t + 1, 0)
                del t
                res.append(_reused(key, q, s, grp))
                del key
            got = [np.concatenate([r[i] for r in res]) for i in range(4)]
            o = np.argsort(got[0])
            parts.append([got[0][o] - 1 + lo * n_tid] + [g[o] for g in got[1:]])
            lo = hi
        cols = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, np.int64) for i in range(4)]
        break
    con.execute("DROP TABLE IF EXISTS _pt_key")
    con.execute("DROP TABLE IF EXISTS _pt_ev")
    if cols is None:
        con.execute("DROP TABLE IF EXISTS _pt_acc")
        return _uses_sql(con, pkey)
    st.start("uses table")
    names = np.asarray(con.execute("SELECT account_id FROM _pt_acc ORDER BY a").fetchnumpy()["account_id"],
                       dtype=object)
    con.execute("DROP TABLE IF EXISTS _pt_acc")
    tids = np.asarray(con.execute("SELECT template_id FROM _pt_tid ORDER BY tid").fetchnumpy()["template_id"],
                      dtype=object)
    # the string type DuckDB gives pandas (object, or pandas' own string type)
    text = con.execute("SELECT ''::VARCHAR AS s").df()["s"].dtype
    key = cols[0]
    return pd.DataFrame({
        "account_id": pd.Series(names[key // n_tid], dtype=text),
        "kind": pd.Series(np.full(len(key), "template", dtype=object), dtype=text),
        "identifier": pd.Series(tids[key % n_tid], dtype=text),
        "n_events": cols[1], "first": cols[2], "last": cols[3],
    })


def _uses_sql(con, pkey: str) -> pd.DataFrame:
    """:func:`_uses` by one SQL aggregation (events with a NULL account or time)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pt_use AS
        WITH pt AS (SELECT p.pid, p.n, st.tid FROM _pt_prompt p JOIN _pt_st st USING (sid)),
        ok AS (SELECT pt.tid FROM pt JOIN _pt_tid t USING (tid) GROUP BY pt.tid, t.is_group
               HAVING count(*) >= 2 OR (t.is_group AND sum(pt.n) >= 2))
        SELECT pid, tid FROM pt SEMI JOIN ok USING (tid)
    """)
    try:
        return con.execute(f"""
            WITH agg AS (
                -- two different prompts <=> two different keys (count(DISTINCT) without the sets)
                SELECT e.account_id, u.tid, count(*) AS n_events, min(e.ts) AS first, max(e.ts) AS last,
                       min(e.pid) <> max(e.pid) AS several
                FROM (SELECT account_id, ts, {pkey} AS pid FROM events WHERE prompt IS NOT NULL) e
                JOIN _pt_use u USING (pid)
                GROUP BY e.account_id, u.tid
            )
            SELECT a.account_id, 'template' AS kind, t.template_id AS identifier, a.n_events,
                   epoch(a.first)::BIGINT AS first, epoch(a.last)::BIGINT AS last
            FROM agg a JOIN _pt_tid t USING (tid)
            WHERE a.several OR (a.n_events >= 2 AND t.is_group)
            ORDER BY a.account_id, identifier
        """).df()
    finally:
        con.execute("DROP TABLE IF EXISTS _pt_use")


def prompt_templates(con, *, perms: int, rows: int, threshold: float, edge_words: int = 8,
                     chunk: int = 250_000, stats: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign every distinct prompt its template fingerprints; return (uses, templates).

    A prompt has up to three fingerprints, each an identifier of kind ``template``:
    its near-duplicate group (MinHash/LSH over the skeleton's word bigrams), the first
    ``edge_words`` words of its skeleton (a wrapper's opening) and the last ``edge_words`` words
    (a wrapper's closing); only skeletons of at least ``2 * edge_words`` words are fingerprinted
    (short texts are sent verbatim by strangers everywhere). Template ids are a family letter
    (``d`` near-duplicate group, ``h`` opening, ``t`` closing) and 15 hex digits of the MD5 of
    the family and the group's canonical text: stable across runs.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Holds the table ``events(account_id, ts, prompt, …)``; an optional column
        ``prompt_hash`` (UBIGINT, exactly DuckDB's ``hash(prompt)``) is used as the prompt key
        instead of hashing every event's text.
    perms, rows, threshold : int, int, float
        MinHash signature length, LSH rows per band, Jaccard needed to join a group.
    edge_words : int
        Words in an opening or closing fingerprint; skeletons need twice as many.
    chunk : int
        Skeletons hashed per pass (bounds memory; results do not depend on it).
    stats : dict, optional
        Receives ``seconds`` and ``cpu_seconds`` per step and ``counts`` (for benchmarks).

    Returns
    -------
    uses : pandas.DataFrame
        (account_id, kind='template', identifier=template_id, n_events, first, last), sorted by
        account and identifier; an account uses a template when it sent two different prompts
        with it, or one near-duplicate group's prompts at least twice.
    templates : pandas.DataFrame
        (template_id, skeleton, n_prompts_distinct), sorted by template_id.

    Notes
    -----
    Creates in ``con`` the relation ``prompt_template(prompt, pid, skeleton, template_id,
    canonical)`` (one row per prompt and fingerprint; ``pid`` is ``hash(prompt)``). It is a view
    in the ``main`` schema over the temporary tables ``_pt_prompt(pid, n, prompt, sid)``,
    ``_pt_skel(sid, skeleton)``, ``_pt_st(sid, tid)`` and ``_pt_tid(tid, template_id,
    canonical)``, so a query for ``pid, template_id`` reads no text. Two distinct prompts with
    the same 64-bit hash would be counted as one prompt.
    """
    ew = int(edge_words)
    st = _Steps(stats)

    # -- 1. a pass over the events: each distinct prompt's key and number of events ------------
    st.start("events pass")
    base_table = events_is_table(con)
    # the row number of an event carrying the prompt lets step 2 fetch each text once, with no
    # hash table of texts; a view (no rowid) falls back to grouping the texts
    row = "min(rowid)" if base_table else "NULL::BIGINT"
    # a loader may store the key with the events (column prompt_hash = hash(prompt)): then the
    # key passes read no text at all
    pkey = prompt_key(con)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _pt_pid AS
        SELECT {pkey} AS pid, count(*) AS n, {row} AS r FROM events WHERE prompt IS NOT NULL GROUP BY pid
    """)

    # -- 2. distinct prompts long enough to be fingerprinted ----------------------------------
    st.start("distinct prompts")
    # masking (almost) never adds words: prompts with too few spaces/newlines to be fingerprinted
    # skip the regexes; a text is not blank when it starts with a visible ASCII character, else
    # trim() tells (written to involve n, so that the optimiser does not push it down to every
    # event)
    seps = _at_least("prompt", 2 * ew - 1, " \\n")
    long_enough = (f"CASE WHEN n <= 0 THEN NULL WHEN NOT {seps} THEN false "
                   "WHEN ascii(prompt) BETWEEN 33 AND 126 THEN true ELSE strlen(trim(prompt)) > 0 END")
    if base_table:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _pt_prompt AS
            SELECT pid, n, prompt FROM (
                SELECT p.pid, p.n, e.prompt FROM events e JOIN _pt_pid p ON e.rowid = p.r
            ) WHERE {long_enough}
        """)
    else:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _pt_prompt AS
            SELECT pid, n, prompt FROM (
                SELECT t.pid, p.n, t.prompt FROM (
                    SELECT hash(prompt) AS pid, prompt FROM events WHERE prompt IS NOT NULL GROUP BY prompt
                ) t JOIN _pt_pid p USING (pid)
            ) WHERE {long_enough}
        """)
    st.count(con, "prompts_distinct", "SELECT count(*) FROM _pt_pid")
    con.execute("DROP TABLE IF EXISTS _pt_pid")
    st.count(con, "prompts_eligible", "SELECT count(*) FROM _pt_prompt")

    # -- 3. skeletons ---------------------------------------------------------------------------
    st.start("skeletons")
    steps = _skeleton_steps("prompt")
    sql = f"SELECT pid, {steps[0]} AS x FROM _pt_prompt"
    for s in steps[1:]:
        sql = f"SELECT pid, {s} AS x FROM ({sql})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _pt_ps AS SELECT pid, x AS skeleton, hash(x) AS sh FROM ({sql})")
    st.count(con, "skeletons_distinct", "SELECT count(DISTINCT skeleton) FROM _pt_ps")

    st.start("distinct skeletons")
    # numbered in a fixed order: by hash(skeleton), then the text (skeletons share long wrapper
    # prefixes, which makes a plain string sort slow). While no two distinct skeletons share a
    # hash (checked), the hash alone is that order and the key prompts are joined on.
    # Words = spaces + 1 (the lengths of string_split(skeleton, ' ')).
    words_ok = _at_least("skeleton", 2 * ew - 1, " ")
    # one skeleton per hash, taken from its smallest prompt key (integer aggregates, no string
    # minimum), then every prompt's skeleton compared with it: a clash is a difference
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pt_sk0 AS
        SELECT r.sh, p.skeleton FROM (SELECT sh, min(pid) AS pid FROM _pt_ps GROUP BY sh) r JOIN _pt_ps p USING (pid)
    """)
    clash = con.execute("SELECT count(*) FROM _pt_ps p JOIN _pt_sk0 k USING (sh) "
                        "WHERE p.skeleton <> k.skeleton").fetchall()[0][0] > 0
    if clash:
        con.execute("""CREATE OR REPLACE TEMP TABLE _pt_sk0 AS
                       SELECT hash(skeleton) AS sh, skeleton FROM (SELECT DISTINCT skeleton FROM _pt_ps)""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _pt_skel AS
        SELECT (row_number() OVER (ORDER BY sh{", skeleton" if clash else ""}) - 1)::INTEGER AS sid, sh, skeleton
        FROM _pt_sk0 WHERE {words_ok}
    """)
    con.execute("DROP TABLE IF EXISTS _pt_sk0")
    n = con.execute("SELECT count(*) FROM _pt_skel").fetchone()[0]
    st.count(con, "skeletons_eligible", "SELECT count(*) FROM _pt_skel")
    st.count(con, "shingles", "SELECT sum(strlen(skeleton) - strlen(replace(skeleton, ' ', ''))) FROM _pt_skel")
    key = "skeleton" if clash else "sh"
    # each prompt's skeleton number, written into the prompt table (no second copy of the texts;
    # prompts whose skeleton is too short keep NULL)
    con.execute("ALTER TABLE _pt_prompt ADD COLUMN sid INTEGER")
    con.execute(f"""
        UPDATE _pt_prompt SET sid = m.sid
        FROM (SELECT p.pid, s.sid FROM _pt_ps p JOIN _pt_skel s USING ({key})) m WHERE _pt_prompt.pid = m.pid
    """)
    con.execute("DROP TABLE IF EXISTS _pt_ps")

    # -- 4. MinHash signatures, in chunks of skeletons -------------------------------------------
    st.start("shingle hashing")
    empty = np.iinfo(np.uint32).max
    sig = np.full((n, perms), empty, dtype=np.uint32)
    flat = sig.reshape(-1)
    for lo in range(0, n, chunk):
        # one-permutation MinHash: each shingle's 64-bit hash picks a bin (low bits) and a value
        # (high bits, capped below the empty marker); a bin's minimum is one signature entry
        mh = con.execute(f"""
            SELECT sid::BIGINT * {int(perms)} + (h % {int(perms)})::BIGINT AS k,
                   least(h >> 32, {empty - 1})::UINTEGER AS v FROM (
                SELECT sid, hash(w[i] || ' ' || w[i + 1]) AS h FROM (
                    SELECT sid, w, unnest(range(1, len(w))) AS i FROM (
                        SELECT sid, string_split(skeleton, ' ') AS w FROM _pt_skel
                        WHERE sid >= {lo} AND sid < {lo + chunk})))
        """).fetchnumpy()
        np.minimum.at(flat, mh["k"], mh["v"])
        del mh
    st.start("densify")
    for lo in range(0, n, chunk):
        sig[lo:lo + chunk] = _densify(sig[lo:lo + chunk], empty)

    # -- 5. groups ------------------------------------------------------------------------------
    st.start("banding")
    comp = _group(sig, rows, threshold) if n else np.zeros(0, dtype=np.int64)
    del sig

    # -- 6. templates: one integer id per template, the texts stored once ----------------------
    st.start("templates")
    con.register("_pt_comp", pd.DataFrame({"sid": np.arange(n, dtype=np.int32), "comp": comp.astype(np.int64)}))
    tid_of = "fam || substr(md5(fam || chr(0) || canonical), 1, 15)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _pt_fam2 AS
        WITH canon AS (  -- a group's id is hashed once, not once per member
            SELECT comp, canonical, {tid_of} AS template_id FROM (
                SELECT c.comp, 'd' AS fam, min(s.skeleton) AS canonical
                FROM _pt_skel s JOIN _pt_comp c USING (sid) GROUP BY c.comp)
        ),
        edges AS (
            SELECT sid, array_to_string(w[1:{ew}], ' ') || ' …' AS head,
                   '… ' || array_to_string(w[len(w) - {ew - 1}:], ' ') AS tail
            FROM (SELECT sid, string_split(skeleton, ' ') AS w FROM _pt_skel)
        )
        SELECT c.sid, k.canonical, k.template_id FROM _pt_comp c JOIN canon k USING (comp)
        UNION ALL
        SELECT sid, canonical, {tid_of} FROM (
            SELECT sid, 'h' AS fam, head AS canonical FROM edges UNION ALL SELECT sid, 't', tail FROM edges)
    """)
    con.unregister("_pt_comp")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pt_tid AS
        SELECT (row_number() OVER (ORDER BY template_id) - 1)::INTEGER AS tid, template_id,
               min(canonical) AS canonical, template_id[1] = 'd' AS is_group
        FROM _pt_fam2 GROUP BY template_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pt_st AS
        SELECT f.sid, t.tid FROM _pt_fam2 f JOIN _pt_tid t USING (template_id)
    """)
    con.execute("DROP TABLE IF EXISTS _pt_fam2")
    _drop(con, "prompt_template")
    view = """VIEW {}prompt_template AS
        SELECT p.prompt, p.pid, s.skeleton, t.template_id, t.canonical
        FROM _pt_prompt p JOIN _pt_skel s USING (sid) JOIN _pt_st st USING (sid) JOIN _pt_tid t USING (tid)"""
    try:
        # in main, so that a caller may later put a temporary *table* of that name beside it
        # (the Spark engine does); a read-only database gets a temporary view
        con.execute("CREATE " + view.format("main."))
    except duckdb.Error:
        con.execute("CREATE TEMP " + view.format(""))
    st.count(con, "templates", "SELECT count(*) FROM _pt_tid")

    # -- 7. each account's uses: one pass over the events on integer keys, grouped in NumPy ----
    st.start("uses")
    # a template is something an account *reuses*: two different prompts with the same opening
    # or closing, or the same near-duplicate text sent at least twice. Only templates that could
    # be reused by someone (two prompts, or a group sent twice in all) take part.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _pt_sn AS
        SELECT sid, count(*) AS n_prompts, sum(n) AS n_events FROM _pt_prompt WHERE sid IS NOT NULL GROUP BY sid
    """)
    fam = con.execute("""
        WITH x AS (SELECT st.sid, st.tid, s.n_prompts, s.n_events FROM _pt_st st JOIN _pt_sn s USING (sid)),
        ok AS (SELECT x.tid, t.is_group FROM x JOIN _pt_tid t USING (tid) GROUP BY x.tid, t.is_group
               HAVING sum(x.n_prompts) >= 2 OR (t.is_group AND sum(x.n_events) >= 2))
        SELECT x.sid, x.tid, ascii(t.template_id[1])::UTINYINT AS family
        FROM x JOIN ok USING (tid) JOIN _pt_tid t USING (tid)
    """).fetchnumpy()
    uses = _uses(con, pkey, n, con.execute("SELECT count(*) FROM _pt_tid").fetchall()[0][0], fam,
                 rows=16 * int(chunk), st=st)
    st.start("template table")
    templates = con.execute("""
        SELECT t.template_id, t.canonical AS skeleton, sum(s.n_prompts)::BIGINT AS n_prompts_distinct
        FROM _pt_sn s JOIN _pt_st st USING (sid) JOIN _pt_tid t USING (tid)
        GROUP BY t.template_id, t.canonical ORDER BY t.template_id
    """).df()
    con.execute("DROP TABLE IF EXISTS _pt_sn")
    st.start(None)
    if stats is not None:
        stats["counts"].update(uses=len(uses), templates_table=len(templates))
    return uses, templates


def template_examples(con, template_ids=None, k: int = 3) -> pd.DataFrame:
    """Up to ``k`` example prompts per template, from the tables :func:`prompt_templates` made.

    The examples of a template are its ``k`` prompts first by ``(hash(prompt), prompt)``, listed
    in text order (what ``SELECT template_id, list(prompt ORDER BY prompt)[1:k] … row_number()
    OVER (PARTITION BY template_id ORDER BY hash(prompt), prompt) <= k`` over ``prompt_template``
    gives), found on integer keys before any text is read.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection :func:`prompt_templates` ran on.
    template_ids : sequence of str, optional
        Only these templates (default all).
    k : int
        Examples per template.

    Returns
    -------
    pandas.DataFrame
        (template_id, examples), sorted by template_id.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k!r}")
    where = ""
    if template_ids is not None:
        con.register("_pt_want", pd.DataFrame({"template_id": pd.Series(list(template_ids), dtype=object)}))
        where = "WHERE tid IN (SELECT t.tid FROM _pt_tid t JOIN _pt_want w USING (template_id))"
    try:
        return con.execute(f"""
            WITH cand AS (
                -- rank() keeps ties on the hash, so the true first k by (hash, text) are in here
                SELECT * FROM (
                    SELECT st.tid, p.pid, p.sid, rank() OVER (PARTITION BY st.tid ORDER BY p.pid) AS r
                    FROM (SELECT * FROM _pt_st {where}) st JOIN _pt_prompt p USING (sid)
                ) WHERE r <= {k}
            ),
            ranked AS (
                SELECT c.tid, p.prompt,
                       row_number() OVER (PARTITION BY c.tid ORDER BY c.pid, p.prompt) AS r2
                FROM cand c JOIN _pt_prompt p ON p.pid = c.pid AND p.sid = c.sid
            )
            SELECT t.template_id, list(r.prompt ORDER BY r.prompt) AS examples
            FROM ranked r JOIN _pt_tid t USING (tid) WHERE r.r2 <= {k}
            GROUP BY t.template_id ORDER BY t.template_id
        """).df()
    finally:
        if template_ids is not None:
            con.unregister("_pt_want")
