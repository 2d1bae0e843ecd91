"""``opslib evidence verify|list|keygen|diff|recover``: check, sign, compare and recover bundles."""

from __future__ import annotations

import argparse

from opslib.cli import err
from opslib.evidence import recover as recover_mod
from opslib.evidence import signing
from opslib.evidence.collect import format_table, list_runs
from opslib.evidence.diff import diff_bundles
from opslib.evidence.manifest import verify


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evidence", help="verify, list, diff, sign or recover evidence bundles")
    esub = p.add_subparsers(dest="evidence_command", required=True)
    e = esub.add_parser(
        "verify",
        help="re-check the hashes, signatures and chain of a bundle or evidence dir",
    )
    e.add_argument("path")
    e.add_argument(
        "--public-key",
        help="Ed25519 public key (PEM, from `opslib evidence keygen`): every manifest must be signed by it",
    )
    e.set_defaults(func=cmd_verify)
    e = esub.add_parser("list", help="table of runs in an evidence dir")
    e.add_argument("dir", nargs="?", default="evidence")
    e.set_defaults(func=cmd_list)
    e = esub.add_parser(
        "keygen",
        help="make an Ed25519 signing key (PATH, mode 0600) and its public key (PATH.pub)",
    )
    e.add_argument(
        "path", help=f"where to write the private key; point {signing.SIGNING_KEY_ENV} at it"
    )
    e.add_argument("--force", action="store_true", help="replace an existing key")
    e.set_defaults(func=cmd_keygen)
    e = esub.add_parser("diff", help="what changed between two runs: parameters, results, findings")
    e.add_argument("a", help="the earlier bundle (path or s3:// URL)")
    e.add_argument("b", help="the later bundle")
    e.set_defaults(func=cmd_diff)
    e = esub.add_parser(
        "recover",
        help="write the bundle (status killed) of a run whose process died, from its staging dir",
    )
    e.add_argument("staging_dir", nargs="?", help="one staging dir (see --list)")
    e.add_argument("--all", action="store_true", help="every staging dir whose process is gone")
    e.add_argument("--list", action="store_true", help="only list staging dirs and their state")
    e.add_argument("--evidence-dir", help="write there instead of the run's own evidence dir")
    e.set_defaults(func=cmd_recover)


def cmd_verify(args: argparse.Namespace) -> int:
    key = signing.load_public_key(args.public_key) if args.public_key else None
    result = verify(args.path, public_key=key)
    print(result)
    return 0 if result.ok else 1


def cmd_list(args: argparse.Namespace) -> int:
    rows = list_runs(args.dir)
    print(format_table(rows, ["runbook", "started", "status", "operator", "key_results", "bundle"]))
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    priv, pub = signing.generate(args.path, overwrite=args.force)
    key = signing.load_public_key(pub)
    print(f"private key: {priv} (keep it secret; export {signing.SIGNING_KEY_ENV}={priv})")
    print(
        f"public key:  {pub} (give it to auditors: opslib evidence verify PATH --public-key {pub})"
    )
    print(f"key id:      {signing.key_id(key)}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    print(diff_bundles(args.a, args.b).to_text())
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    if args.list:
        root = recover_mod.staging_root()
        runs = [
            recover_mod.staged_run(p)
            for p in sorted(root.iterdir())
            if (p / recover_mod.RUN_FILE).exists()
        ]
        rows = [
            {
                "staging_dir": str(r.path),
                "runbook": r.runbook,
                "started": r.info.get("started", ""),
                "state": ", ".join(r.owners_alive()) or "stale (process gone)",
            }
            for r in runs
        ]
        print(format_table(rows, ["staging_dir", "runbook", "started", "state"]))
        return 0
    if args.all == bool(args.staging_dir):
        err("error: give one STAGING_DIR or --all (see --list)")
        return 2
    if args.staging_dir:
        b = recover_mod.recover(args.staging_dir, evidence_dir=args.evidence_dir)
        print(f"recovered {b.record['runbook']} (status {b.record['status']})")
        print(b.location)
        return 0
    written, problems = recover_mod.recover_all()
    for b in written:
        print(b.location)
    for p in problems:
        err(f"warning: {p}")
    if not written and not problems:
        print("no staging dir of a killed run")
    return 1 if problems else 0
