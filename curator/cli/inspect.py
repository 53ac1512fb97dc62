"""`curator inspect`: what a dataset looks like before any training (README.md, ARCHITECTURE.md).

Counts, class histogram, imbalance ratio, many/medium/few shot groups, the noise rate when
truth is known, corruption facts and the problems found. ``--json`` prints one JSON object
(at least ``n_samples``, ``n_classes``, ``class_counts``, ``imbalance_ratio``, ``shot_groups``,
``noise_rate`` when truth is known); ``--check-images`` decodes every image first.
"""
from __future__ import annotations

import argparse

from curator.data.options import add_dataset_args
from curator.log import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="class histogram, imbalance ratio, shot groups, noise rate, problems")
    add_dataset_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--check-images", dest="check_images", action="store_true",
                   help="decode every image (progress bar) and report unreadable / truncated / converted ones")
    p.add_argument("--show-problems", dest="show_problems", type=int, default=10,
                   help="problems listed in the table output (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from curator.data.registry import load_dataset
    from curator.data.stats import dataset_summary
    from pipelines.recipes import resolve_recipe

    from curator.data.registry import given_dataset_options

    given = given_dataset_options(args)
    options, _ = resolve_recipe(given)   # the data `curator audit` would audit (the recipe's [dataset] included)
    ds = load_dataset(options)
    if args.check_images:
        from curator.data.validate import check_images

        ds = check_images(ds, ds.problems)
    summary = dataset_summary(ds)
    if args.json:
        print_json(summary)
    else:
        print(format_summary(summary, show_problems=args.show_problems))
    return 0


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _ratio(x) -> str:
    return "-" if x is None else f"{x:.4g}"


def format_summary(s: dict, *, show_problems: int = 10) -> str:
    """The human-readable table of `curator.data.stats.dataset_summary`."""
    from curator.data.stats import shot_group

    lines = [f"dataset      {s['dataset']}" + (f"  (label set {s['label_set']})" if s.get("label_set") else ""),
             f"root         {s['root'] or '-'}",
             f"samples      {s['n_samples']:,} training  (" + ", ".join(f"{k} {v:,}" for k, v in s["splits"].items()) + ")",
             f"classes      {s['n_classes']}",
             f"imbalance    {_ratio(s['imbalance_ratio'])} (largest / smallest class, given labels)"]
    if "noise_rate" in s:
        lines.append(f"noise rate   {_pct(s['noise_rate'])} of {s['n_with_truth']:,} samples with known truth "
                     "(label != true label; a flip to the same class is not noise)")
        lines.append(f"true imbal.  {_ratio(s['true_imbalance_ratio'])} (by true label)")
    groups = s["shot_groups"]
    lines.append("shot groups  " + ", ".join(f"{g} {groups[g]['n_classes']}" for g in groups)
                 + "  (many >= 100, medium 20-100, few <= 20)")
    if "true_shot_groups" in s:
        tg = s["true_shot_groups"]
        lines.append("  by truth   " + ", ".join(f"{g} {tg[g]['n_classes']}" for g in tg))
    corr = s.get("corruption")
    if corr:
        desc = [f"imbalance={corr['imbalance']}"]
        if corr["imbalance"] != "none":
            desc.append(f"gamma={corr['gamma']:g} realised {_ratio(corr['realised_imbalance_ratio'])}")
        if corr["noise"] != "none":
            desc.append(f"noise={corr['noise']} rate={corr['noise_rate']:g} expected {_pct(corr['expected_noise_rate'])} "
                        f"realised {_pct(corr['realised_noise_rate'])}")
        lines.append("corruption   " + ", ".join(desc) + f", seed {corr['seed']}")
        lines.append(f"             {corr['note']}")
    counts, names = s["class_counts"], s["class_names"]
    true_counts = s.get("true_class_counts")
    width = max([len(n) for n in names[:200]] + [5])
    top = max(counts) if counts else 0
    lines.append("")
    lines.append(f"{'class':>5}  {'name':<{width}}  {'count':>9}" + (f"  {'true':>9}" if true_counts else "") + "  shot    histogram")
    for c, (name, n) in enumerate(zip(names, counts)):
        if c >= 200:
            lines.append(f"... {len(names) - 200} more classes (use --json)")
            break
        bar = "#" * (round(30 * n / top) if top else 0)
        tc = f"  {true_counts[c]:>9,}" if true_counts else ""
        lines.append(f"{c:>5}  {name:<{width}}  {n:>9,}{tc}  {str(shot_group(n)):<6}  {bar}")
    p = s["problems"]
    lines.append("")
    lines.append(f"problems     {p['n']}" + (": " + ", ".join(f"{k} {v}" for k, v in p["by_kind"].items()) if p["n"] else ""))
    for e in p["examples"][:show_problems]:
        lines.append(f"  [{e['action']}] {e['kind']} {e['sample_id'] or '-'} ({e['source']}): {e['reason']}")
    if p["n"] > min(show_problems, len(p["examples"])):
        lines.append(f"  ... {p['n'] - min(show_problems, len(p['examples']))} more (--json, or problems.parquet in a run)")
    notes = s.get("notes") or {"n": 0}
    if notes["n"]:
        lines.append(f"notes        {notes['n']} (not problems): " + ", ".join(f"{k} {v}" for k, v in notes["by_kind"].items()))
        for e in notes["examples"][:min(show_problems, 5)]:
            lines.append(f"  [{e['action']}] {e['kind']} {e['sample_id'] or '-'} ({e['source']}): {e['reason']}")
    if "images_checked" in s:
        ic = s["images_checked"]
        lines.append(f"images       {ic['n_checked']:,} decoded, {ic['n_bad']} bad, {ic['n_converted']} converted")
    return "\n".join(lines)
