"""`hydrascope evidence` (write evidence packages) and `hydrascope verify` (check one)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]

EVIDENCE_EPILOG = """examples:
  hydrascope evidence runs/r1 --flagged --out packages
        one zip per flagged cluster (the default when no --cluster is given)
  hydrascope evidence runs/r1 --cluster C0001 --cluster C0007 --out packages --redact
        two clusters, without raw prompt text or e-mail domains
  HS_INDICATOR_KEY='a secret both providers agreed on' \\
  hydrascope evidence runs/r1 --flagged --out packages --indicator-key-env HS_INDICATOR_KEY
        also write indicators.csv: keyed hashes of IPs, prefixes, instruments and templates
  hydrascope evidence runs/r1 --cluster C0012 --bundle worlds/demo --out packages
        a cluster that was not flagged: its raw events are read from the input bundle

See docs/evidence-packages.md for the package and indicator formats.
"""

VERIFY_EPILOG = """examples:
  hydrascope verify packages/cluster-C0001.zip
  hydrascope verify packages/*.zip

Exit status 0 when every package matches its manifest, 1 when any file was changed,
added or removed (each one is named), 2 on usage errors.
"""


def register(subparsers) -> None:
    """Add the `evidence` and `verify` subcommands."""
    p = subparsers.add_parser(
        "evidence", help="write one verifiable evidence package (zip) per cluster",
        description="Write one self-contained, reproducible evidence package (zip) per cluster of a run: "
                    "a printable summary, accounts with scores and evidence, shared identifiers, templates, "
                    "raw event rows, run facts, and a manifest of SHA-256 digests.",
        epilog=EVIDENCE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `hydrascope run`")
    which = p.add_argument_group("which clusters")
    which.add_argument("--cluster", dest="clusters", metavar="ID", action="append", default=[],
                       help="a cluster to package (repeatable)")
    which.add_argument("--flagged", action="store_true",
                       help="every flagged cluster (the default without --cluster)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the packages into")
    p.add_argument("--redact", action="store_true",
                   help="leave raw prompt text and e-mail domains out of the packages")
    p.add_argument("--indicator-key-env", metavar="VAR",
                   help="environment variable holding the key (>= 16 bytes; 'hex:...' for hex) for "
                        "shareable HMAC indicators; the key is never written anywhere")
    p.add_argument("--bundle", metavar="BUNDLE_DIR",
                   help="the run's input bundle, for raw events of clusters that were not flagged")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_evidence)

    v = subparsers.add_parser(
        "verify", help="check an evidence package against its manifest",
        description="Check every file of an evidence package against the SHA-256 digests in its "
                    "manifest.json and name each file that was changed, added or removed.",
        epilog=VERIFY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("packages", metavar="PACKAGE.zip", nargs="+", help="package(s) to check")
    v.set_defaults(func=_verify)


def _evidence(args) -> int:
    import hashlib

    from exporters.evidence import build_packages
    from exporters.indicators import key_from_env

    key = key_from_env(args.indicator_key_env) if args.indicator_key_env else None
    paths = build_packages(args.run_dir, args.out, cluster_ids=args.clusters, flagged=args.flagged,
                           redact=args.redact, indicator_key=key, bundle_dir=args.bundle,
                           progress=not args.no_progress and sys.stderr.isatty())
    if not paths:
        print("no cluster to package (the run flagged none; name one with --cluster)")
        return 0
    for path in paths:
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path}  sha256={sha}")
    print(f"{len(paths)} package(s) written; record the sha256 values above to prove later that a "
          "package is the one you built")
    return 0


def _verify(args) -> int:
    from exporters.verify import verify_package
    from graphbuild.errors import ExportError

    status = 0
    for name in args.packages:
        try:
            result = verify_package(name)
        except ExportError as exc:
            status = 1
            print(f"MISSING  {name}: {exc}")
            continue
        if result.ok:
            print(f"OK  {name}  cluster={result.cluster_id}  sha256={result.sha256}  "
                  f"manifest-digest={result.digest}")
            continue
        status = 1
        print(f"MISMATCH  {name}  sha256={result.sha256}")
        for line in result.problems:
            print(f"  {line}")
    return status
