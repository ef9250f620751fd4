"""Prompt layer: templates found by masking variable parts and grouping near-duplicate skeletons.

Steps, all over *distinct* prompts (deduplicated first, so a fleet sending one text 10,000
times costs one hash):

1. normalise — lower-case; code blocks, quoted spans, URLs and numbers are masked
   (``‹code›``, ``‹q›``, ``‹url›``, ``0``); whitespace collapsed. What is left is the
   prompt's *skeleton*.
2. fingerprint — MinHash (rensa, compiled) over word-bigram shingles of the skeleton.
3. group — LSH banding proposes candidates; a candidate joins its bucket's first member only
   when their estimated Jaccard similarity reaches ``template_jaccard``; connected components
   of those links are *templates*. A chain-of-thought wrapper around different maths problems
   shares most of its bigrams, so its prompts fall into one template though no two are equal.
4. the template id is a hash of the group's smallest skeleton: stable across runs.

How much a shared template weighs is decided by rarity (graphbuild.weighting): a template used
by thousands of unrelated people ("Translate the following text into French: …") gives each
pair almost nothing, and beyond ``hub_cap`` sharers it is context only.
"""

from __future__ import annotations

import hashlib

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
    x = rf"regexp_replace({x}, '\"[^\"]{{1,300}}\"|“[^”]{{1,300}}”|«[^»]{{1,300}}»', ' ‹q› ', 'g')"
    x = rf"regexp_replace({x}, '[0-9]+([.,:/][0-9]+)*', '0', 'g')"
    x = rf"trim(regexp_replace({x}, '\s+', ' ', 'g'))"
    return x


def _minhash(skeletons: list[str], perms: int) -> np.ndarray:
    from rensa import RMinHash

    token_sets = []
    for s in skeletons:
        w = s.split(" ")
        token_sets.append([a + " " + b for a, b in zip(w, w[1:])] or w)
    m = RMinHash.digest_matrix_from_token_sets(token_sets, perms, 20261126)
    return np.asarray(m.to_rows(), dtype=np.uint32).reshape(len(skeletons), perms)


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


def _edge_keys(skeleton: str, words: int) -> tuple[str | None, str | None]:
    w = skeleton.split(" ")
    if len(w) < 2 * words:
        return None, None
    return " ".join(w[:words]), " ".join(w[-words:])


def _tid(kind: str, text: str) -> str:
    """Template id: kind letter (d: near-duplicate group, h: opening, t: closing) + 15 hex digits."""
    return kind[0] + hashlib.sha1(f"{kind}\x00{text}".encode("utf-8")).hexdigest()[:15]


def prompt_templates(con, *, perms: int, rows: int, threshold: float, edge_words: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign every distinct prompt its template fingerprints; return (uses, templates).

    A prompt has up to three fingerprints, each an identifier of kind ``template``:
    its near-duplicate group (MinHash/LSH over the skeleton), the first ``edge_words`` words of
    its skeleton (a wrapper's opening) and the last ``edge_words`` words (a wrapper's closing),
    the latter two only when the skeleton is long enough to have a separate middle.

    Creates the temp table ``prompt_template(prompt, skeleton, template_id, canonical)`` (one
    row per prompt and fingerprint) in ``con``. ``uses`` has (account_id, kind='template',
    identifier=template_id, n_events, first, last); ``templates`` has (template_id, skeleton,
    n_prompts_distinct).
    """
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE prompt_skel AS
        SELECT prompt, {skeleton_sql('prompt')} AS skeleton
        FROM (SELECT DISTINCT prompt FROM events WHERE prompt IS NOT NULL AND length(trim(prompt)) > 0)
    """)
    skels = con.execute("SELECT DISTINCT skeleton FROM prompt_skel ORDER BY skeleton").df()["skeleton"].tolist()
    rows_out = []
    if skels:
        # short texts ("can you help me with this?") are sent verbatim by strangers everywhere:
        # only skeletons long enough to carry a wrapper and a separate middle are fingerprinted
        skels = [x for x in skels if x.count(" ") + 1 >= 2 * edge_words]
    if skels:
        comp = _group(_minhash(skels, perms), rows, threshold)
        df = pd.DataFrame({"skeleton": skels, "comp": comp})
        canon = df.groupby("comp")["skeleton"].min()  # skels are sorted, min is the first
        df["canonical"] = df["comp"].map(canon)
        df["template_id"] = df["canonical"].map(lambda c: _tid("dup", c))
        rows_out.append(df[["skeleton", "template_id", "canonical"]])
        edges = [_edge_keys(x, edge_words) for x in skels]
        heads = pd.DataFrame({"skeleton": skels, "canonical": [h for h, _ in edges]}).dropna()
        heads["template_id"] = heads["canonical"].map(lambda c: _tid("head", c))
        heads["canonical"] = heads["canonical"] + " …"
        tails = pd.DataFrame({"skeleton": skels, "canonical": [t for _, t in edges]}).dropna()
        tails["template_id"] = tails["canonical"].map(lambda c: _tid("tail", c))
        tails["canonical"] = "… " + tails["canonical"]
        rows_out += [heads[["skeleton", "template_id", "canonical"]], tails[["skeleton", "template_id", "canonical"]]]
    df = pd.concat(rows_out, ignore_index=True) if rows_out else pd.DataFrame(
        {"skeleton": [], "template_id": [], "canonical": []})
    con.register("_skel_tpl", df)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE prompt_template AS
        SELECT p.prompt, p.skeleton, t.template_id, t.canonical FROM prompt_skel p JOIN _skel_tpl t USING (skeleton)
    """)
    con.unregister("_skel_tpl")
    uses = con.execute("""
        SELECT e.account_id, 'template' AS kind, t.template_id AS identifier, count(*) AS n_events,
               epoch(min(e.ts))::BIGINT AS first, epoch(max(e.ts))::BIGINT AS last
        FROM events e JOIN prompt_template t USING (prompt)
        GROUP BY e.account_id, t.template_id
        -- a template is something an account *reuses*: two different prompts with the same
        -- opening or closing, or the same near-duplicate text sent at least twice
        HAVING count(DISTINCT e.prompt) >= 2 OR (count(*) >= 2 AND NOT (t.template_id LIKE 'h%' OR t.template_id LIKE 't%'))
    """).df()
    templates = con.execute("""
        SELECT template_id, min(canonical) AS skeleton, count(DISTINCT prompt) AS n_prompts_distinct
        FROM prompt_template GROUP BY template_id
    """).df()
    return uses, templates
