"""`curator export RUN --policy clean|relabel|reweight --out PATH`: manifests for downstream training."""
from __future__ import annotations

import argparse

from curator.hygiene import registry
from curator.hygiene.thresholds import UNUSABLE
from curator.log import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a cleaned / relabelled / re-weighted manifest and sampler weights")
    p.add_argument("run", help="an audited run directory")
    p.add_argument("--policy", choices=["clean", "relabel", "reweight"], required=True)
    p.add_argument("--format", dest="fmt", choices=["parquet", "csv"], default=None, help="default: from the suffix of --out")
    p.add_argument("--out", required=True, help="output file; <stem>.weights.npy is written beside it")
    p.add_argument("--base-dir", default=None, help="directory the output must stay inside (then --out is relative to it)")
    p.add_argument("--min-confidence", type=float, default=0.5, help="relabel: least suggestion confidence used")
    p.add_argument("--class-balanced", action="store_true", help="reweight: balance classes by estimated clean mass")
    p.add_argument("--drop", default="", metavar="KINDS",
                   help="also drop hygiene issues, comma-separated: "
                        + "; ".join(w if w.startswith(k) else f"{k} ({w})"
                                    for k, w in ((k, registry.words(k)) for k in registry.droppable()))
                        + " — a duplicate group keeps one member; quality drops the unusable images (--unusable)")
    p.add_argument("--unusable", default=",".join(UNUSABLE), metavar="CHECKS",
                   help=f"image-quality checks that make an image unusable (default {','.join(UNUSABLE)}; also: "
                        "grayscale, odd_size, odd_aspect_ratio); used by --drop quality and by relabel, which drops "
                        "instead of relabelling a flagged unusable image")
    p.add_argument("--allow-changed", dest="allow_changed", action="store_true",
                   help="export even if image files of exported samples changed since the audit (default: refuse)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_run)


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def _run(args) -> int:
    from curator.audit.export import export_run

    summary = export_run(args.run, args.policy, args.out, fmt=args.fmt, base=args.base_dir,
                         min_confidence=args.min_confidence, class_balanced=args.class_balanced,
                         allow_changed=args.allow_changed, drop=_names(args.drop), unusable=_names(args.unusable))
    if args.json:
        print_json(summary)
    else:
        print(describe_export(summary))
    return 0


REASONS = {"label": "flagged as label issues", "review": "by your review decisions", "duplicate": "duplicate copies",
           "leak": "copies of test / validation images", "quality": "unusable images", "outlier": "outliers"}


def describe_export(summary: dict) -> str:
    """The export in words that cannot be misread: how many samples are in the file, how many of them keep
    their given label and how many are relabelled, how many were left out and why."""
    n_rows, n_relabelled, n_dropped = summary["n_rows"], summary["n_relabelled"], summary["n_dropped"]
    why = "; ".join(f"{n} {REASONS.get(k, k)}" for k, n in summary.get("dropped_for", {}).items() if n)
    return (f"exported {n_rows:,} of {n_rows + n_dropped:,} samples to {summary['out']}: "
            f"{n_rows - n_relabelled:,} with their given label, {n_relabelled:,} relabelled. "
            f"Left out: {n_dropped:,}" + (f" ({why})" if why else "") + f". Sampler weights: {summary['weights']}")
