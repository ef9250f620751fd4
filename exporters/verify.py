"""Check an evidence package against its manifest: name every changed, added or removed member."""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from graphbuild.errors import ExportError

__all__ = ["VerifyResult", "verify_package", "MANIFEST_NAME", "PACKAGE_FORMAT", "manifest_digest",
           "render_manifest"]

MANIFEST_NAME = "manifest.json"
PACKAGE_FORMAT = "hydrascope-evidence-package"


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of the manifest's canonical compact JSON, without its own ``digest`` field."""
    body = {k: v for k, v in manifest.items() if k != "digest"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def render_manifest(manifest: dict) -> bytes:
    """The exact bytes of ``manifest.json``: sorted keys, 2-space indent, ASCII, final newline."""
    return (json.dumps(manifest, sort_keys=True, ensure_ascii=True, indent=2) + "\n").encode("ascii")


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_package`.

    Attributes
    ----------
    ok : bool
        True when every member matches the manifest and nothing was added or removed.
    changed : list of str
        Members whose content differs from the manifest (or cannot be read back); includes
        ``manifest.json`` itself when it was altered.
    added : list of str
        Members in the archive that the manifest does not list (and duplicate entries).
    removed : list of str
        Members the manifest lists that the archive lacks (``manifest.json`` when it is missing).
    cluster_id : str or None
        The cluster the package is about, as its manifest says.
    digest : str or None
        The manifest digest; compare it with the value recorded when the package was built.
    sha256 : str
        SHA-256 of the whole package file.
    problems : list of str
        One human-readable line per finding.
    """

    ok: bool
    changed: list = field(default_factory=list)
    added: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    cluster_id: str | None = None
    digest: str | None = None
    sha256: str = ""
    problems: list = field(default_factory=list)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError):
        return None


def verify_package(path) -> VerifyResult:
    """Check every member of an evidence package against its ``manifest.json``.

    Parameters
    ----------
    path : path-like
        The ``.zip`` written by :func:`exporters.evidence.build_package`.

    Returns
    -------
    VerifyResult
        ``ok`` is False on any mismatch; ``changed``, ``added`` and ``removed`` name the members.

    Raises
    ------
    ExportError
        When `path` does not exist.

    Examples
    --------
    >>> result = verify_package("packages/cluster-C0001.zip")   # doctest: +SKIP
    >>> result.ok, result.changed                                # doctest: +SKIP
    (True, [])
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path} does not exist or is not a file")
    raw = path.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return VerifyResult(ok=False, sha256=sha, problems=[f"not a readable zip archive: {exc}"])

    changed: list[str] = []
    added: list[str] = []
    removed: list[str] = []
    problems: list[str] = []
    with zf:
        infos = zf.infolist()
        seen: set[str] = set()
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in seen:
                added.append(info.filename)
                problems.append(f"added: {info.filename} (a second entry with the same name)")
                continue
            seen.add(info.filename)
            members[info.filename] = info

        manifest = None
        listed: dict[str, str] = {}
        if MANIFEST_NAME not in members:
            removed.append(MANIFEST_NAME)
            problems.append(f"removed: {MANIFEST_NAME} (the package has no manifest)")
        else:
            data = _read_member(zf, members[MANIFEST_NAME])
            reason = None
            if data is None:
                reason = "cannot be read back (corrupt data)"
            else:
                try:
                    manifest = json.loads(data.decode("utf-8"))
                    if not isinstance(manifest, dict) or manifest.get("format") != PACKAGE_FORMAT:
                        reason, manifest = "is not a hydrascope evidence manifest", None
                    elif manifest.get("digest") != manifest_digest(manifest):
                        reason = "its digest does not match its content"
                    elif render_manifest(manifest) != data:
                        reason = "its bytes differ from the canonical rendering"
                except (UnicodeDecodeError, ValueError):
                    reason, manifest = "is not valid UTF-8 JSON", None
            if reason:
                changed.append(MANIFEST_NAME)
                problems.append(f"changed: {MANIFEST_NAME} {reason}")
            if manifest is not None:
                for entry in manifest.get("files", []):
                    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                        listed[entry["name"]] = str(entry.get("sha256", ""))

        trusted = MANIFEST_NAME not in changed
        if manifest is not None and not trusted:
            # the manifest itself was altered: it cannot say which other member changed, so
            # differences are reported as problems, not blamed on the members
            for name, info in members.items():
                if name == MANIFEST_NAME:
                    continue
                data = _read_member(zf, info)
                if name not in listed or data is None or hashlib.sha256(data).hexdigest() != listed[name]:
                    problems.append(f"unverifiable: {name} differs from the altered manifest")
            for name in listed:
                if name not in members:
                    problems.append(f"unverifiable: {name} is listed by the altered manifest but missing")
        elif manifest is not None:
            for name, info in members.items():
                if name == MANIFEST_NAME:
                    continue
                if name not in listed:
                    added.append(name)
                    problems.append(f"added: {name} (not in the manifest)")
                    continue
                data = _read_member(zf, info)
                if data is None:
                    changed.append(name)
                    problems.append(f"changed: {name} (cannot be read back: corrupt data)")
                elif hashlib.sha256(data).hexdigest() != listed[name]:
                    changed.append(name)
                    problems.append(f"changed: {name} (SHA-256 differs from the manifest)")
            for name in listed:
                if name not in members:
                    removed.append(name)
                    problems.append(f"removed: {name} (listed in the manifest, missing from the archive)")
        else:
            for name in members:
                if name != MANIFEST_NAME:
                    problems.append(f"unverifiable: {name} (no usable manifest)")

    ok = not (changed or added or removed or problems)
    return VerifyResult(
        ok=ok, changed=changed, added=added, removed=removed,
        cluster_id=(manifest or {}).get("cluster_id"), digest=(manifest or {}).get("digest"),
        sha256=sha, problems=problems,
    )
