"""`curator bench gpu`: every GPU number the project lacks, in one command that fits a short GPU lease (issue 24).

Runs the parts of `curator.bench.gpu_parts` in priority order (SSL speed A/B, SSL quality in a 3-minute budget,
the audit after embedding on the device, kNN 1M x 512, ResNet-50 embedding throughput, JPEG decoding into the
image cache, then, when time is left, the audit on part 2's embeddings and the audit's CPU reference), each under
its own time cap and all under ``--total-s`` (480 s). A part that fails is recorded with its reason and the
others go on; a part that reaches its cap keeps what it had measured; parts that no longer fit are skipped and
say so. On a GPU every part runs in its own process (``--isolate``, the default there): a crash, a hang in
compilation or a CUDA error ends that part only, and its cap is enforced by ending the process group.

``--tiny`` runs the same code paths on the CPU in seconds on a generated miniature of the data
(`curator.bench.gpu_data.synthetic_source`); tests run it. The data for a GPU run is packed by
``scripts/gpu_pack.py`` (docs/gpu.md).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from curator.bench import gpu_data
from curator.log import to_jsonable
from curator.rundir import write_json_atomic
from curator.bench.gpu_parts import FULL, PARTS, TINY, Ctx, SkipPart

LOG = logging.getLogger(__name__)

NAME = "gpu"
HELP = "every GPU number in one capped run (SSL A/B and budget, audit on the device, kNN 1M, ResNet-50, JPEG decode)"
DEFAULT_DATA = ".gpucarry/data"
MIN_PART_S = 10          # a part is not started with less time than this left (tiny: 0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, help=f"data folder from scripts/gpu_pack.py (default {DEFAULT_DATA}; "
                                                "--tiny: a generated miniature)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes on a generated miniature: every part in seconds on a CPU")
    p.add_argument("--total-s", type=float, default=480.0, help="overall time cap in seconds (default %(default)s)")
    p.add_argument("--parts", default=None, help=f"comma-separated subset of {', '.join(PARTS)} (default: all, in that order)")
    p.add_argument("--device", default=None, help="cuda, cuda:i or cpu (default: CUDA when present)")
    p.add_argument("--work", default=None, help="scratch folder (default: a temporary folder, removed after)")
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                   help="each part in its own process (default: on, off with --tiny)")
    p.add_argument("--cap-scale", type=float, default=1.0, help=argparse.SUPPRESS)   # tests: shrink every part's cap
    p.add_argument("--one-part", default=None, help=argparse.SUPPRESS)               # child process: run this part
    p.add_argument("--part-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--context", default=None, help=argparse.SUPPRESS)


def _environment(device) -> dict:
    import platform

    import torch
    import torchvision

    from curator.evidence.knn import _import_faiss

    faiss = _import_faiss()
    env = {"device": str(device), "python": platform.python_version(), "torch": torch.__version__,
           "torchvision": torchvision.__version__, "cuda_runtime": torch.version.cuda,
           "faiss": getattr(faiss, "__version__", None) if faiss is not None else None,
           "faiss_gpus": faiss.get_num_gpus() if faiss is not None and hasattr(faiss, "get_num_gpus") else 0,
           "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                   capability=list(torch.cuda.get_device_capability(device)))
    return env


def _write(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(to_jsonable(obj)))
    os.replace(tmp, path)


def _run_here(name: str, ctx: Ctx) -> dict:
    """Run part `name` in this process; failures become a record, never an exception."""
    fn = PARTS[name][0]
    try:
        return {"status": "ok", **fn(ctx)}
    except SkipPart as exc:
        return {"status": "skipped", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one part's failure must not stop the others
        LOG.error("part %s failed: %s", name, "".join(traceback.format_exception(exc)).rstrip())
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"status": "failed", "reason": f"{type(exc).__name__}: {first}"[:500]}


def _run_child(name: str, args: argparse.Namespace, ctx: Ctx, cap: float) -> dict:
    """Run part `name` in a child process (own process group), ended after `cap` seconds."""
    out = ctx.work / f"part-{name}.json"
    ctx_file = ctx.work / f"context-{name}.json"
    _write(ctx_file, {"earlier": ctx.earlier, "deadline_in_s": cap})
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "curator.bench.gpu", "--one-part", name, "--part-out", str(out), "--context",
           str(ctx_file), "--data", str(ctx.data), "--work", str(ctx.work)]
    cmd += ["--tiny"] if args.tiny else []
    cmd += ["--device", str(ctx.device)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    proc = subprocess.Popen(cmd, start_new_session=True, env=env)
    try:
        code = proc.wait(timeout=cap + min(5.0, 0.2 * cap))   # the part watches its own deadline: some grace
        stopped = None
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code, stopped = None, f"stopped at its cap of {cap:.0f} s"
    try:
        res = json.loads(out.read_text())
    except (OSError, ValueError):
        res = {}
    if stopped:
        res = {**res, "status": "partial" if res else "failed", "reason": stopped}
    elif code != 0 and res.get("status") not in ("ok", "failed"):
        res = {**res, "status": "failed", "reason": f"the part's process ended with code {code}"}
    return res


def _child_main(args: argparse.Namespace) -> int:
    from curator.device import select_device

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    if args.tiny:                                    # as in-process: one thread is fastest for tiny sizes
        import torch

        torch.set_num_threads(1)
    c = json.loads(Path(args.context).read_text())
    out = Path(args.part_out)
    ctx = Ctx(device=select_device(args.device), data=Path(args.data), work=Path(args.work),
              sizes=TINY if args.tiny else FULL, deadline=time.monotonic() + float(c["deadline_in_s"]),
              earlier=c["earlier"], keep=lambda partial: _write(out, {"status": "partial", **partial}))
    _write(out, _run_here(args.one_part, ctx))
    return 0


def _r(x, digits: int = 3):
    return round(x, digits) if isinstance(x, float) else x


def _headline(name: str, res: dict) -> str:
    """One line of a part's main numbers for the table."""
    if res.get("status") not in ("ok", "partial"):
        return res.get("reason", "")
    try:
        if name == "ssl_speed":
            return "; ".join(f"{r['variant']}@{r['batch']}: {r['seconds_per_epoch']:.2f} s/ep {r['images_per_s']:.0f} img/s"
                             + (f" {r['peak_mem_gb']} GB" if r.get("peak_mem_gb") is not None else "")
                             for r in res.get("rows", []) if r.get("seconds_per_epoch"))
        if name == "ssl_budget":
            return (f"{res['setting']['variant']}@{res['setting']['batch']}: {res.get('epochs_done')} of "
                    f"{res['planned_epochs']} epochs, kNN {_r(res.get('final_knn'))}")
        if name.startswith("audit"):
            return (f"n {res['n']}, {res['wall_s']} s ({', '.join(f'{k} {v}' for k, v in res['stage_s'].items())}), "
                    f"AUROC {_r(res.get('auroc'))}, F1 {_r(res.get('f1'))}")
        if name == "knn":
            return "; ".join(f"{r['backend']}: {r['self_knn_s']} s recall@10 {r['recall@10']}"
                             for r in res.get("rows", []) if r.get("status") == "ok")
        if name == "resnet50":
            return f"{res['images_per_s']} img/s at {res['size']} px"
        if name == "jpeg_decode":
            return "; ".join(f"{r['size']} px {r['decoder']}: {r['images_per_s']} img/s"
                             for r in res.get("rows", []) if r.get("status") == "ok")
    except (KeyError, TypeError):
        pass
    return ""


def run(args: argparse.Namespace) -> dict:
    if args.one_part:                                # never reached through the CLI; see __main__ below
        raise ValueError("--one-part is for the child processes of `curator bench gpu`")
    import torch

    from curator.data.problems import DataError
    from curator.device import select_device, torch_threads

    device = select_device(args.device)
    names = [n.strip() for n in args.parts.split(",") if n.strip()] if args.parts else list(PARTS)
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise DataError(f"--parts: unknown part(s) {unknown}; known: {', '.join(PARTS)}")
    isolate = (not args.tiny) if args.isolate is None else args.isolate
    t_start = time.monotonic()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="curator-bench-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else None
    if data is None and args.tiny:
        data = gpu_data.synthetic_source(work / "source")
        gpu_data.pack_data(data, work / "data", n_audit=150, n_test=40)
        data = work / "data"
    data = data or Path(DEFAULT_DATA)
    missing = [f for f in gpu_data.FILES if not (data / f).is_file()]
    if missing:
        raise DataError(f"data folder {str(data)!r} lacks {missing}; build it with scripts/gpu_pack.py (docs/gpu.md)")
    if device.type != "cuda" and not args.tiny:
        LOG.warning("bench gpu: no CUDA device; running on %s (numbers are not GPU numbers)", device)
    sizes = TINY if args.tiny else FULL
    with torch_threads(1 if args.tiny else torch.get_num_threads()):   # tiny: one thread (fast for tiny sizes)
        results, rows = _run_parts(args, names, device, data, work, sizes, isolate, t_start)
    pack = json.loads((data / gpu_data.PACK).read_text()) if (data / gpu_data.PACK).is_file() else None
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return {"tiny": bool(args.tiny), "environment": _environment(device), "total_cap_s": args.total_s,
            "total_s": round(time.monotonic() - t_start, 1), "isolate": isolate, "data": str(data), "pack": pack,
            "rows": rows, "parts": results}


def _run_parts(args, names, device, data, work, sizes, isolate, t_start) -> tuple[dict, list]:
    results: dict[str, dict] = {}
    earlier: dict[str, dict] = {}
    rows = []
    for name in names:
        cap = PARTS[name][1] * args.cap_scale
        left = args.total_s - (time.monotonic() - t_start)
        t0 = time.monotonic()
        if left < (0 if args.tiny else MIN_PART_S):
            res = {"status": "skipped", "reason": f"overall cap of {args.total_s:.0f} s reached ({left:.0f} s left)"}
        else:
            cap = min(cap, left)
            LOG.info("bench gpu: part %s (cap %.0f s, %.0f s left overall): %s", name, cap, left, PARTS[name][2])
            if isolate:
                res = _run_child(name, args, Ctx(device, data, work, sizes, 0.0, earlier), cap)
            else:
                ctx = Ctx(device, data, work, sizes, time.monotonic() + cap, earlier)
                res = _run_here(name, ctx)
                if ctx.left() < 0 and res.get("status") == "ok":
                    res["note"] = f"ran {-ctx.left():.0f} s past its cap of {cap:.0f} s (in-process: not stopped)"
        res = {**res, "cap_s": round(cap), "part_s": round(time.monotonic() - t0, 1)}   # the part's wall time
        results[name] = res
        earlier[name] = {k: v for k, v in res.items() if k in ("best", "status")}
        rows.append({"part": name, "status": res["status"], "part_s": res["part_s"], "cap_s": res["cap_s"],
                     "result": _headline(name, res)})
        LOG.info("bench gpu: part %s %s in %.1f s%s", name, res["status"], res["part_s"],
                 f" ({res['reason']})" if res.get("reason") else "")
        # the result so far, in case the whole command is stopped from outside (the final write replaces it)
        write_json_atomic(Path(args.out or f"bench-results/{NAME}.json"),
                          {"benchmark": NAME, "incomplete": f"written after part {name}", "rows": rows, "parts": results})
    return results, rows


if __name__ == "__main__":
    _p = argparse.ArgumentParser(prog="python -m curator.bench.gpu")
    add_arguments(_p)
    sys.exit(_child_main(_p.parse_args()))
