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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["prompt_templates", "skeleton_sql", "REASONING_PATTERN", "JAILBREAK_PATTERN"]

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


def skeleton_sql(column: str) -> str:
    """DuckDB SQL expression giving the masked skeleton of a prompt column."""
    x = f"lower({column})"
    x = rf"regexp_replace({x}, '```.*?```', ' ‹code› ', 'gs')"
    x = rf"regexp_replace({x}, 'https?://\S+', ' ‹url› ', 'g')"
    # line-bounded rather than {1,300}: RE2 compiles bounded repeats into large automata (2x slower)
    x = rf"regexp_replace({x}, '\"[^\"\n]+\"|“[^”\n]+”|«[^»\n]+»', ' ‹q› ', 'g')"
    x = rf"regexp_replace({x}, '[0-9]+([.,:/][0-9]+)*', '0', 'g')"
    # only runs of 2+ whitespace or non-space whitespace need replacing (same result, far fewer matches)
    x = rf"trim(regexp_replace({x}, '\s\s+|[\t\n\r\f\v]', ' ', 'g'))"
    return x


def _densify(sig: np.ndarray, empty: int) -> np.ndarray:
    """Fill empty one-permutation bins from the next non-empty bin to the right, circularly.

    Rotation densification (Shrivastava & Li, 2014): two documents then agree on an empty bin
    exactly when they agree on the bin it borrows from, which keeps the collision probability of
    every bin equal to the Jaccard similarity.
    """
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


def _group(sig: np.ndarray, rows: int, threshold: float) -> np.ndarray:
    """Connected components of LSH candidates whose estimated Jaccard reaches ``threshold``."""
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


def prompt_templates(con, *, perms: int, rows: int, threshold: float, edge_words: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign every distinct prompt its template fingerprints; return (uses, templates).

    A prompt has up to three fingerprints, each an identifier of kind ``template``:
    its near-duplicate group (MinHash/LSH over the skeleton's word bigrams), the first
    ``edge_words`` words of its skeleton (a wrapper's opening) and the last ``edge_words`` words
    (a wrapper's closing); only skeletons of at least ``2 * edge_words`` words are fingerprinted
    (short texts are sent verbatim by strangers everywhere). Template ids are a family letter
    (``d`` near-duplicate group, ``h`` opening, ``t`` closing) and 15 hex digits of the MD5 of
    the family and the group's canonical text: stable across runs.

    Creates the temp table ``prompt_template(prompt, pid, skeleton, template_id, canonical)`` (one
    row per prompt and fingerprint) in ``con``. ``uses`` has (account_id, kind='template',
    identifier=template_id, n_events, first, last); ``templates`` has (template_id, skeleton,
    n_prompts_distinct).
    """
    ew = int(edge_words)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE prompt_skel AS
        SELECT prompt, hash(prompt) AS pid, {skeleton_sql('prompt')} AS skeleton
        FROM (SELECT DISTINCT prompt FROM events WHERE prompt IS NOT NULL AND length(trim(prompt)) > 0)
        -- masking (almost) never adds words: prompts with too few spaces/newlines to be fingerprinted
        -- skip the regexes
        WHERE length(prompt) - length(replace(replace(prompt, ' ', ''), chr(10), '')) >= {2 * ew - 1}
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE skel AS
        -- numbered in a fixed order; by hash first: skeletons share long wrapper prefixes, which
        -- makes a plain string sort slow
        SELECT row_number() OVER (ORDER BY hash(skeleton), skeleton) - 1 AS sid, skeleton, w FROM (
            SELECT skeleton, string_split(skeleton, ' ') AS w FROM (SELECT DISTINCT skeleton FROM prompt_skel)
        ) WHERE len(w) >= {2 * ew}
    """)
    n = con.execute("SELECT count(*) FROM skel").fetchone()[0]
    parts = []
    if n:
        # one-permutation MinHash: each shingle's 64-bit hash picks a bin (low bits) and a value
        # (high bits); a bin's minimum is one signature entry. One pass in DuckDB, then the
        # empty bins of short skeletons are densified.
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
        sig = _densify(sig, empty)
        comp = _group(sig, rows, threshold)
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
        -- a template is something an account *reuses*: two different prompts with the same
        -- opening or closing, or the same near-duplicate text sent at least twice
        HAVING count(DISTINCT t.pid) >= 2 OR (count(*) >= 2 AND NOT (t.template_id LIKE 'h%' OR t.template_id LIKE 't%'))
    """).df()
    templates = con.execute("""
        SELECT template_id, min(canonical) AS skeleton, count(DISTINCT prompt) AS n_prompts_distinct
        FROM prompt_template GROUP BY template_id
    """).df()
    return uses, templates
