"""Normalise IP address text: canonical IPv4 dotted quads and compressed lower-case IPv6."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["IPV4_CANONICAL_REGEX", "normalize_ip", "normalize_ips"]

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: A full-match regular expression (RE2 / Python syntax) for an IPv4 address that is already
#: canonical: four decimal octets 0-255 without leading zeros.  SQL code uses it to leave such
#: values alone and send only the others to :func:`normalize_ips`.
IPV4_CANONICAL_REGEX = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"


def normalize_ip(value: str | None) -> str | None:
    """Return the canonical text of one IP address, or None when it is not an address.

    Parameters
    ----------
    value : str or None
        Address text; surrounding whitespace is ignored.

    Returns
    -------
    str or None
        IPv4 as a dotted quad; IPv6 compressed and lower-case (``2001:db8::1``); an
        IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) as its IPv4 address, so that the same
        client links whichever way it was logged.  None for empty text, text with a port,
        brackets, a prefix length, leading zeros in an IPv4 octet, or anything else that
        Python's :mod:`ipaddress` does not accept.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def normalize_ips(values: Iterable[str | None]) -> list[str | None]:
    """Apply :func:`normalize_ip` to each value (meant for the distinct values of a column).

    Parameters
    ----------
    values : iterable of str or None

    Returns
    -------
    list of str or None
        One result per input value, in input order.
    """
    return [normalize_ip(v) for v in values]
