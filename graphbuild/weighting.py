"""Rarity weighting of shared identifiers, and the hub rule.

Why this weighting
------------------
Sharing an identifier is evidence in inverse proportion to how many accounts share it. Two
accounts on one home IP are probably related; two of the 3,000 accounts behind a mobile
carrier's NAT are not. We use the *resource-allocation* weighting of link prediction
(Zhou, Lü & Zhang 2009, the sharper cousin of Adamic–Adar): an identifier shared by ``k``
accounts gives every pair of them

    w_pair = beta_kind / (k - 1) * idf(k)

times an inverse-document-frequency factor ``idf(k) = log(N / k) / log(N / 2)`` (1 for a
pair, 0 for an identifier everyone shares), so that each sharer receives at most ``beta_kind`` of evidence from that identifier in total,
however many others share it. This is the IDF idea made exact for graphs: a popular template
or a carrier NAT cannot dominate anyone's neighbourhood, while a card shared by three new
accounts gives each pair a strong link. ``beta_kind`` says how telling the kind is when only
two accounts share it (a payment instrument is stronger than a /24 prefix); see
:data:`graphbuild.config.DEFAULT_KIND_WEIGHTS`.

Templates are the exception to resource allocation: a prompt template is behaviour, not a
resource, and eighty accounts pushing all their prompts through one wrapper is *stronger*
evidence than two doing so. A template shared by ``k`` accounts gives each pair
``beta_template * idf(k)`` — the information content of the shared template, without the
``1 / (k - 1)`` split.

Share of activity: every contribution is multiplied by ``min(share_a, share_b)``, the smaller of
the two accounts' shares of activity carried by the identifier (requests from the IP / with the
template / with the user agent over all requests; payments with the instrument over all
payments). An IP that is one of a proxy account's eighty exits says little about its tie to the
household whose only IP it is; a translation template used for a tenth of two strangers' prompts
says little; a wrapper around every prompt of two accounts says a lot (graphbuild.pairs).

A pair's raw evidence in a layer is the sum over the identifiers it shares in that layer; the
layer's link weight is ``1 - exp(-raw)``, in (0, 1): one shared rare card already gives
0.86, further shared evidence saturates instead of piling up.

Hubs
----
An identifier shared by more than ``hub_cap`` accounts is a *hub*: with resource-allocation
weights its pairs would carry almost nothing, while expanding it would cost ``k(k-1)/2``
pairs (a 20,000-account NAT is 200 M pairs). Hubs are never expanded. They are recorded in
``identifiers.parquet`` with ``is_hub = true`` and shown as context ("12 accounts also used
carrier NAT 100.64.3.1, shared with 4,210 others"). Identifiers with more than
``pair_sample_above`` (64) sharers are expanded into a sparse expander of ~``k log2 k`` pairs whose
weights are scaled so the group's total is kept (graphbuild.pairs), and a use that cannot give any
pair ``min_link_weight`` on its own is dropped before expansion.

Lockstep timing is the exception: there, being active in the same minute is weighed by the
Jaccard similarity of two accounts' sets of active windows (SynchroTrap, Cao et al. 2014),
because a busy 24/7 integrator would otherwise co-occur with everybody.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pair_weight", "layer_weight", "idf"]


def pair_weight(beta: float, k: np.ndarray) -> np.ndarray:
    """Evidence one identifier shared by ``k`` accounts gives each pair of them.

    Examples
    --------
    >>> pair_weight(1.0, np.array([2, 3, 11])).round(3).tolist()
    [1.0, 0.5, 0.1]
    """
    k = np.asarray(k, dtype=np.float64)
    return np.where(k >= 2, beta / np.maximum(k - 1, 1), 0.0)


def layer_weight(raw: np.ndarray) -> np.ndarray:
    """Saturating link weight in [0, 1) from a pair's summed raw evidence.

    Examples
    --------
    >>> layer_weight(np.array([0.0, 1.0, 2.0])).round(3).tolist()
    [0.0, 0.632, 0.865]
    """
    return -np.expm1(-np.asarray(raw, dtype=np.float64))


def idf(k: np.ndarray, n: int) -> np.ndarray:
    """Inverse document frequency of an identifier shared by ``k`` of ``n`` accounts, 1 at k = 2.

    Examples
    --------
    >>> idf(np.array([2, 100, 10000]), 10000).round(3).tolist()
    [1.0, 0.541, 0.0]
    """
    k = np.asarray(k, dtype=np.float64)
    n = max(int(n), 3)
    return np.clip(np.log(n / np.maximum(k, 1)) / np.log(n / 2), 0.0, 1.0)
