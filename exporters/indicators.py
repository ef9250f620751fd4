"""Keyed, shareable indicators: HMAC-SHA256 of canonical identifier values (docs/evidence-packages.md)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import unicodedata

from graphbuild.errors import ConfigError

__all__ = [
    "INDICATOR_KINDS", "MIN_KEY_BYTES", "canonical_value", "indicator", "key_from_env",
]

#: identifier kinds (graphbuild.schema.KIND_LAYER) that become shareable indicators, and the
#: indicator kind each one is written as (a sign-up IP is the same kind of thing as an event IP).
INDICATOR_KINDS = {
    "ip": "ip",
    "signup_ip": "ip",
    "prefix": "prefix",
    "instrument": "instrument",
    "template": "template",
}

#: shortest key accepted; HMAC is only as strong as its key, and indicators of small value
#: spaces (IPv4 addresses!) are brute-forceable by anyone who knows the key.
MIN_KEY_BYTES = 16

_WS = re.compile(r"\s+")


def _canonical_ip(value: str) -> str:
    addr = ipaddress.ip_address(value.strip().split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.compressed


def _canonical_prefix(value: str) -> str:
    v = value.strip()
    if "/" not in v:
        # a bare partial IPv4 prefix as some exporters write it ("203.0.113" -> 203.0.113.0/24)
        parts = v.split(".")
        if 1 <= len(parts) < 4 and all(p.isdigit() for p in parts):
            v = ".".join(parts + ["0"] * (4 - len(parts))) + f"/{8 * len(parts)}"
        else:
            # a single address: its /24 (IPv4) or /48 (IPv6) network, as graphbuild groups them
            addr = ipaddress.ip_address(_canonical_ip(v))
            v = f"{addr}/{24 if addr.version == 4 else 48}"
    net = ipaddress.ip_network(v, strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            net = ipaddress.ip_network(f"{mapped}/{net.prefixlen - 96}", strict=False)
    return net.compressed


def _canonical_text(value: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", value)).strip()


def canonical_value(kind: str, value: str) -> str:
    """The canonical spelling of an identifier value, so two providers hash the same bytes.

    Parameters
    ----------
    kind : str
        Indicator kind: ``ip``, ``prefix``, ``instrument`` or ``template``
        (``signup_ip`` is accepted and treated as ``ip``).
    value : str
        The raw value (an address, a network, an instrument fingerprint, a template skeleton).

    Returns
    -------
    str
        ``ip``: :mod:`ipaddress` compressed form, IPv4-mapped IPv6 turned into IPv4, zone dropped;
        ``prefix``: network address with prefix length, host bits cleared (``203.0.113.0/24``,
        ``2001:db8:1::/48``); ``instrument``: NFKC, surrounding white space removed, case kept;
        ``template``: NFKC, every run of white space replaced by one space, trimmed, case kept.

    Raises
    ------
    ValueError
        When an ``ip`` or ``prefix`` value is not an address or network, or the kind is unknown.

    Examples
    --------
    >>> canonical_value("ip", "::ffff:203.0.113.7")
    '203.0.113.7'
    >>> canonical_value("prefix", "2001:DB8:1:2::5/48")
    '2001:db8:1::/48'
    >>> canonical_value("template", "  Solve   step by step:\\n<NUM> ")
    'Solve step by step: <NUM>'
    """
    kind = INDICATOR_KINDS.get(kind, kind)
    if kind == "ip":
        return _canonical_ip(value)
    if kind == "prefix":
        return _canonical_prefix(value)
    if kind == "instrument":
        return unicodedata.normalize("NFKC", value).strip()
    if kind == "template":
        return _canonical_text(value)
    raise ValueError(f"unknown indicator kind {kind!r}; expected one of ip, prefix, instrument, template")


def indicator(key: bytes, kind: str, value: str) -> str:
    """The shareable indicator of one identifier: hex HMAC-SHA256(key, ``f"{kind}:{canonical}"``).

    Parameters
    ----------
    key : bytes
        The secret both providers agreed on (at least :data:`MIN_KEY_BYTES` bytes).
    kind : str
        ``ip``, ``prefix``, ``instrument`` or ``template`` (``signup_ip`` counts as ``ip``).
    value : str
        The raw identifier value; it is canonicalised first (:func:`canonical_value`).

    Returns
    -------
    str
        64 lower-case hex digits.

    Examples
    --------
    >>> indicator(b"0123456789abcdef", "ip", "203.0.113.7")[:16]
    '0de5bb2d8e03993e'
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"the indicator key must be at least {MIN_KEY_BYTES} bytes")
    kind = INDICATOR_KINDS.get(kind, kind)
    message = f"{kind}:{canonical_value(kind, value)}".encode("utf-8")
    return hmac.new(bytes(key), message, hashlib.sha256).hexdigest()


def key_from_env(var: str) -> bytes:
    """Read an indicator key from environment variable `var` (its UTF-8 bytes; ``hex:`` prefix = hex).

    Raises
    ------
    ConfigError
        When the variable is unset, empty, not valid hex after ``hex:``, or shorter than
        :data:`MIN_KEY_BYTES` bytes.
    """
    raw = os.environ.get(var)
    if not raw:
        raise ConfigError(f"environment variable {var} holding the indicator key is not set or empty")
    if raw.startswith("hex:"):
        try:
            key = bytes.fromhex(raw[4:])
        except ValueError as exc:
            raise ConfigError(f"environment variable {var}: the key after 'hex:' is not valid hex") from exc
    else:
        key = raw.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"environment variable {var}: the indicator key must be at least "
                          f"{MIN_KEY_BYTES} bytes (got {len(key)})")
    return key
