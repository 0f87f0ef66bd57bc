"""deltaprop side by side with PyTorch (CPU) and scikit-learn's MLPClassifier, on the same work.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py            # full run (~15 min)
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py --quick    # about a minute
    python bench/run.py --sections fmnist,floor --reps 5 --json out.json

Every measurement runs in a fresh process (bench/workers.py), threads pinned to 2 for every
library. Repetitions are interleaved (rep 1 of every implementation, then rep 2, ..., with the
order of the implementations rotated each time), so that a noisy neighbour slows all of them rather
than one. Tables report the median over repetitions and the spread (min–max); ratios are taken
within a repetition and then their median reported. The tables print as Markdown.

Sections:
  fmnist   Fashion-MNIST 784-256-128-10 ReLU, softmax cross-entropy, float32, batch 128, shuffled:
           SGD lr 0.1 and Adam lr 1e-3. s/epoch, test accuracy, peak memory.
  floor    FLOPs of the matrix products of one epoch and the time they take at the measured GEMM
           rate at those very shapes (NumPy/OpenBLAS and PyTorch/MKL); each SGD epoch as a multiple.
  small    digits 64-32-10 sigmoid and a 3-4-3-2 ReLU net, full-batch gradient descent: µs/step.
  batch    784-256-128-10 SGD, batch sizes 16 … 1024: s/epoch and multiple of the floor.
  infer    predictions per second on the 10,000 Fashion-MNIST test images.
  scaling  s/epoch as the width (784-h-h-10) and the rows (1k … 60k) grow.
  estimator  deltaprop's MLPClassifier(solver="sgd", batch_size=128, alpha=1e-4) against the engine's
           dp.fit on the same work, interleaved in one process: s/epoch and what the fit adds.

The report opens with the host: CPU vendor and model, and the BLAS kernel each library ran, so that
figures from different CPUs (AMD EPYC, Intel Xeon, ...) are kept apart in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKERS = HERE / "workers.py"
IMPLS = ("deltaprop", "torch", "sklearn")
#: Fashion-MNIST also trains deltaprop with each batch split over two threads (Trainer(threads=2)).
FMNIST_IMPLS = ("deltaprop", "deltaprop-2t", "torch", "sklearn")
SIZES = [784, 256, 128, 10]
N_TRAIN = 60000
SECTIONS = ("fmnist", "floor", "small", "batch", "infer", "scaling", "estimator")


# -- running workers, on a quiet machine -----------------------------------------------------------
def busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wait_for_quiet(limit_s: float, log, threshold: float = 0.15, window: float = 0.5) -> float:
    """Wait (up to limit_s) until other processes use less than ``threshold`` cores over
    ``window`` seconds; returns the load last seen. On a shared 2-core machine one busy neighbour
    halves the cores and stalls a 2-thread BLAS, so measurements wait for a quiet moment."""
    waited = 0.0
    while True:
        b0 = busy_seconds()
        time.sleep(window)
        load = (busy_seconds() - b0) / window
        if load < threshold or waited >= limit_s:
            return load
        if waited == 0:
            log(f"  waiting for a quiet machine (others use {load:.1f} cores)")
        waited += window


def run_worker(task: dict, threads: int) -> dict:
    """Run one measurement; records how many cores other processes used meanwhile (``others``)."""
    task = {**task, "threads": threads}
    b0, c0, t0 = busy_seconds(), children_seconds(), time.perf_counter()
    proc = subprocess.run([sys.executable, str(WORKERS), json.dumps(task)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"worker failed for {task}:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    others = (busy_seconds() - b0) - (children_seconds() - c0)
    result["others_cores"] = max(0.0, others / wall)
    return result


def interleaved(cases: dict, reps: int, threads: int, log, quiet_s: float, noisy: float) -> dict:
    """cases: {case: {impl: task}} → {case: {impl: [result per rep]}}, reps interleaved and rotated.

    A measurement during which other processes used more than ``noisy`` cores is run again (twice
    at most); the one kept is flagged in the results when it was still noisy."""
    out = {case: {impl: [] for impl in tasks} for case, tasks in cases.items()}
    for r in range(reps):
        for case, tasks in cases.items():
            impls = list(tasks)
            impls = impls[r % len(impls):] + impls[:r % len(impls)]
            for impl in impls:
                for _attempt in range(3):
                    wait_for_quiet(quiet_s, log, window=0.5 if quiet_s > 30 else 0.25)
                    t0 = time.perf_counter()
                    res = run_worker({**tasks[impl], "seed": r}, threads)
                    log(f"  rep {r + 1}/{reps} {case} {impl}: {time.perf_counter() - t0:.1f} s"
                        f" (others used {res['others_cores']:.2f} cores)")
                    if res["others_cores"] <= noisy:
                        break
                    log("  noisy: measuring again")
                out[case][impl].append(res)
    return out


# -- statistics ------------------------------------------------------------------------------------
def med(xs):
    return statistics.median(xs)


def spread(xs, fmt="{:.3f}"):
    """median [min–max] of the values."""
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(med(xs))} [{fmt.format(min(xs))}–{fmt.format(max(xs))}]"


def per_rep_epoch(results):
    """One s/epoch figure per repetition: the median of that run's epochs."""
    return [med(r["epoch_s"]) for r in results]


def ratio_col(num, den):
    """Per-repetition ratios of two lists of per-rep times; their median and range."""
    return [a / b for a, b in zip(num, den)]


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -- FLOPs and the floor ---------------------------------------------------------------------------
def batches_of(n, bs):
    """{batch size: how many batches} of an epoch of n rows."""
    full, tail = divmod(n, bs)
    return {bs: full, **({tail: 1} if tail else {})}


def epoch_flops(sizes, n):
    """(forward, dW, dA) FLOPs of one epoch: 2·n·n_in·n_out each, no dA for the first layer."""
    per_row = [2 * a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return n * sum(per_row), n * sum(per_row), n * sum(per_row[1:])


def floor_seconds(products, sizes, n, bs):
    """Seconds of one epoch's products at the measured time of each product at its own shape."""
    t = {}
    for p in products:
        t.setdefault(p["m"], 0.0)
        t[p["m"]] += p["s"]
    return sum(count * t[m] for m, count in batches_of(n, bs).items())


def merge_products(results):
    """Median over repetitions of each product's seconds."""
    by_key = {}
    for res in results:
        for p in res["products"]:
            by_key.setdefault((p["m"], p["layer"], p["product"]), []).append(p)
    return [{**ps[0], "s": med([p["s"] for p in ps])} for ps in by_key.values()]


# -- the sections ----------------------------------------------------------------------------------
def fmnist_cases(args):
    cases = {}
    for opt, lr in (("sgd", 0.1), ("adam", 1e-3)):
        cases[f"fmnist-{opt}"] = {impl: {"kind": "train", "impl": impl, "data": "fashion-mnist", "sizes": SIZES,
                                         "hidden": "relu", "epochs": args.epochs, "batch_size": 128,
                                         "optimizer": opt, "lr": lr, "floor": opt == "sgd"}
                                   for impl in FMNIST_IMPLS}
    return cases


def fmnist_report(res, args):
    rows, notes = [], []
    sgd_times = {impl: per_rep_epoch(res["fmnist-sgd"][impl]) for impl in res["fmnist-sgd"]}
    for opt in ("sgd", "adam"):
        case = res[f"fmnist-{opt}"]
        impls = list(case)
        times = {impl: per_rep_epoch(case[impl]) for impl in impls}
        for impl in impls:
            rs = case[impl]
            rows.append([f"{impl}", opt, spread(times[impl]),
                         spread(ratio_col(times[impl], times["torch"]), "{:.2f}"),
                         spread(ratio_col(times[impl], times["sklearn"]), "{:.2f}"),
                         spread(ratio_col(times[impl], sgd_times[impl]), "{:.2f}"),
                         spread([r["accuracy"] for r in rs], "{:.4f}"),
                         f"{med([r['peak_rss_mb'] for r in rs]):.0f}",
                         f"{med([r['peak_rss_mb'] - r['data_mb'] for r in rs]):.0f}",
                         f"{med([r['rss_start_mb'] for r in rs]):.0f}"])
    data_mb = res["fmnist-sgd"]["deltaprop"][0]["data_mb"]
    head = ["implementation", "optimizer", "s/epoch", "× torch", "× sklearn", "× its own SGD epoch",
            f"test acc @{args.epochs}", "peak RSS MB", "peak − data MB", "RSS at start MB"]
    notes.append(f"float32 data set (train + test): {data_mb:.1f} MB; memory target: peak ≤ {data_mb + 150:.0f} MB.")
    notes.append("deltaprop-2t: the same training with Trainer(threads=2), each batch split over two threads "
                 "with one BLAS thread each (deltaprop.parallel). '× its own SGD epoch': the Adam epoch over the "
                 "same tool's SGD epoch, within a repetition.")
    return table(head, rows) + "\n\n" + "\n".join(notes)


def floor_cases(args, batch_sizes):
    ms = sorted({m for bs in batch_sizes for m in batches_of(N_TRAIN, bs)})
    return {"gemm": {impl: {"kind": "gemm", "impl": impl, "sizes": SIZES, "batches": ms, "blocks": args.blocks}
                     for impl in ("deltaprop", "torch")}}


def floor_report(res, fm):
    fwd, dw, da = epoch_flops(SIZES, N_TRAIN)
    total = fwd + dw + da
    prods = {impl: merge_products(res["gemm"][impl]) for impl in res["gemm"]}
    lines = [f"One epoch, 60,000 rows: forward {fwd / 1e9:.1f} GFLOP, dW {dw / 1e9:.1f}, dA {da / 1e9:.1f} "
             f"(no dA for layer 1), total {total / 1e9:.1f} GFLOP."]
    rows = []
    step128 = {}
    for impl, ps in prods.items():
        lib = "NumPy/OpenBLAS" if impl == "deltaprop" else "PyTorch/MKL"
        for p in sorted([p for p in ps if p["m"] == 128], key=lambda p: (p["product"] != "forward", p["layer"])):
            step128.setdefault((p["layer"], p["product"]), {})[lib] = p
        big = med([r["gflops_2048"] for r in res["gemm"][impl]])
        s = floor_seconds(ps, SIZES, N_TRAIN, 128)
        rows.append([lib, f"{big:.0f}", f"{total / s / 1e9:.0f}", f"{s:.3f}"])
    lines.append("")
    lines.append(table(["GEMM library", "GFLOP/s at 2048³", "GFLOP/s at the step's shapes", "floor s/epoch"], rows))
    lines.append("")
    prow = []
    for (layer, product), libs in sorted(step128.items(), key=lambda kv: (kv[0][1] != "forward", kv[0][1], kv[0][0])):
        cells = []
        for lib in ("NumPy/OpenBLAS", "PyTorch/MKL"):
            p = libs.get(lib)
            cells += [f"{p['s'] * 1e6:.1f}", f"{p['flops'] / p['s'] / 1e9:.0f}"] if p else ["–", "–"]
        prow.append([f"{product} layer {layer}"] + cells)
    lines.append(table(["product (batch 128)", "OpenBLAS µs", "GFLOP/s", "MKL µs", "GFLOP/s"], prow))
    machine_floor = None
    if "deltaprop" in prods and "torch" in prods:
        best = [min(a, b, key=lambda p: p["s"]) for a in prods["deltaprop"] for b in prods["torch"]
                if (a["m"], a["layer"], a["product"]) == (b["m"], b["layer"], b["product"])]
        machine_floor = floor_seconds(best, SIZES, N_TRAIN, 128)
        lines.append("")
        lines.append(f"Machine floor (faster library for each product): **{machine_floor:.3f} s/epoch**.")
    if fm is not None:
        own = floor_seconds(prods["deltaprop"], SIZES, N_TRAIN, 128)
        rows = []
        for impl in fm["fmnist-sgd"]:
            rs = fm["fmnist-sgd"][impl]
            t = med(per_rep_epoch(rs))
            own_multiple = [med(r["epoch_s"]) / r["floor_s"] for r in rs]
            rows.append([impl, f"{t:.3f}", f"{t / own:.2f}", f"{t / machine_floor:.2f}" if machine_floor else "–",
                         spread([r["floor_s"] for r in rs]), spread(own_multiple, "{:.2f}")])
        lines.append("")
        lines.append(table(["SGD epoch", "s/epoch", "× OpenBLAS floor", "× machine floor",
                            "floor measured in the same process", "× that floor"], rows))
        lines.append("")
        lines.append("The last two columns: right after each training its own process times the epoch's products "
                     "(OpenBLAS, 2 threads) again, so the multiple does not depend on how fast the shared host "
                     "was at another moment.")
    return "\n".join(lines), prods


def small_cases(args):
    cases = {}
    for name, data, sizes, hidden, lr in (("digits 64-32-10 sigmoid", "digits", [64, 32, 10], "sigmoid", 0.5),
                                          ("3-4-3-2 relu, 200 rows", "tiny", [3, 4, 3, 2], "relu", 0.1)):
        cases[name] = {impl: {"kind": "train", "impl": impl, "data": data, "sizes": sizes, "hidden": hidden,
                              "epochs": args.steps, "batch_size": None, "optimizer": "sgd", "lr": lr}
                       for impl in IMPLS}
    return cases


def small_report(res, args):
    rows = []
    for name, case in res.items():
        us = {impl: [t * 1e6 for t in per_rep_epoch(case[impl])] for impl in case}
        for impl in case:
            rows.append([name, impl, spread(us[impl], "{:.0f}"), spread(ratio_col(us["torch"], us[impl]), "{:.2f}"),
                         spread([r["accuracy"] for r in case[impl]], "{:.3f}")])
    return table(["network", "implementation", "µs/step", "torch ÷ this", f"train acc @{args.steps}"], rows)


def batch_cases(args):
    return {"batch": {impl: {"kind": "sweep", "impl": impl, "data": "fashion-mnist", "sizes": SIZES, "hidden": "relu",
                             "epochs": args.sweep_epochs, "optimizer": "sgd", "lr": 0.1, "accuracy": False,
                             "sweep": [{"batch_size": bs} for bs in args.batch_sizes]} for impl in IMPLS}}


def sweep_times(results, key):
    """{value of key: [s/epoch per rep]} from sweep results."""
    out = {}
    for res in results:
        for run in res["runs"]:
            out.setdefault(run[key], []).append(med(run["epoch_s"]))
    return out


def batch_report(res, prods):
    t = {impl: sweep_times(res["batch"][impl], "batch_size") for impl in res["batch"]}
    rows = []
    for bs in sorted(t["deltaprop"]):
        floor = floor_seconds(prods["deltaprop"], SIZES, N_TRAIN, bs) if prods else None
        row = [bs]
        for impl in IMPLS:
            row.append(spread(t[impl][bs]))
        row += [spread(ratio_col(t["deltaprop"][bs], t["torch"][bs]), "{:.2f}"),
                spread(ratio_col(t["deltaprop"][bs], t["sklearn"][bs]), "{:.2f}"),
                f"{floor:.3f}" if floor else "–", f"{med(t['deltaprop'][bs]) / floor:.2f}" if floor else "–"]
        rows.append(row)
    return table(["batch", "deltaprop s/epoch", "torch", "sklearn", "dp ÷ torch", "dp ÷ sklearn", "OpenBLAS floor",
                  "dp × floor"], rows)


def infer_cases(args):
    return {"infer": {impl: {"kind": "infer", "impl": impl, "sizes": SIZES, "repeats": args.infer_repeats}
                      for impl in IMPLS}}


def infer_report(res):
    rate = {impl: [r["rows"] / med(r["seconds"]) for r in rs] for impl, rs in res["infer"].items()}
    rows = []
    for impl, rs in res["infer"].items():
        floor = [med(r["seconds"]) / r["products_s"] for r in rs if r.get("products_s")]
        rows.append([impl, spread([x / 1e3 for x in rate[impl]], "{:.0f}"),
                     spread(ratio_col(rate[impl], rate["torch"]), "{:.2f}"),
                     spread(floor, "{:.2f}") if floor else "–",
                     spread([r["products_s"] * 1e3 for r in rs], "{:.2f}") if floor else "–"])
    return (table(["implementation", "thousand predictions/s (10,000 images, one call)", "× torch throughput",
                   "time × its forward products", "forward products ms (OpenBLAS, same process)"], rows)
            + "\n\nThe forward products: the three A_{l−1} W_lᵀ of 10,000 rows with NumPy's OpenBLAS in the "
            "same process, right after the predictions (the floor of an inference pass on that BLAS).")


def estimator_cases(args):
    return {"estimator": {"deltaprop": {"kind": "estimator", "impl": "deltaprop", "epochs": args.est_epochs,
                                        "repeats": args.est_repeats}}}


def estimator_report(res, args):
    rows = []
    est_over_engine, fit_over_engine, extra = [], [], []
    for r in res["estimator"]["deltaprop"]:
        runs = r["runs"]
        for est, eng in zip(runs["estimator"], runs["engine"]):
            e_ep, g_ep = med(est["epoch_s"]), med(eng["epoch_s"])
            est_over_engine.append(e_ep / g_ep)
            fit_over_engine.append(est["fit_s"] / eng["fit_s"])
            extra.append(est["fit_s"] - sum(est["epoch_s"]) - (eng["fit_s"] - sum(eng["epoch_s"])))
        for name in ("estimator", "engine"):
            rows.append([name, spread([med(x["epoch_s"]) for x in runs[name]]),
                         spread([x["fit_s"] / len(x["epoch_s"]) for x in runs[name]]),
                         spread([(x["fit_s"] - sum(x["epoch_s"])) * 1e3 for x in runs[name]], "{:.1f}")])
    head = ["", "s/epoch (callback)", "fit s / epochs", "fit outside the epochs, ms"]
    return (table(head, rows) + "\n\n"
            + f"Estimator ÷ engine, per epoch: {spread(est_over_engine, '{:.3f}')}; whole fit: "
            f"{spread(fit_over_engine, '{:.3f}')}; what the estimator's fit adds outside the epochs beyond the "
            f"engine's: {spread([e * 1e3 for e in extra], '{:.1f}')} ms. "
            f"MLPClassifier(solver='sgd', batch_size=128, alpha=1e-4), {args.est_epochs} epochs, against dp.fit with "
            "the same network (784-100-10, scikit-learn's initialization), Nesterov momentum 0.9, α 0.001, λ 1e-4, "
            "accuracy not tracked; pairs interleaved in one process, ratios within a pair.")


def scaling_cases(args):
    width = [{"sizes": [784, h, h, 10], "width": h} for h in args.widths]
    rows = [{"rows": r} for r in args.rows]
    base = {"kind": "sweep", "data": "fashion-mnist", "hidden": "relu", "epochs": args.sweep_epochs, "batch_size": 128,
            "optimizer": "sgd", "lr": 0.1, "accuracy": False}
    return {"width": {impl: {**base, "impl": impl, "sizes": SIZES, "rows": args.width_rows, "sweep": width}
                      for impl in IMPLS},
            "rows": {impl: {**base, "impl": impl, "sizes": SIZES, "sweep": rows} for impl in IMPLS}}


def scaling_report(res, args):
    out = []
    for key, label in (("width", f"784-h-h-10, {args.width_rows:,} rows, batch 128, SGD: s/epoch"),
                       ("rows", "784-256-128-10, batch 128, SGD: s/epoch by rows")):
        t = {impl: sweep_times(res[key][impl], key) for impl in res[key]}
        rows = []
        for v in sorted(t["deltaprop"]):
            rows.append([f"{v:,}"] + [spread(t[impl][v]) for impl in IMPLS]
                        + [spread(ratio_col(t["deltaprop"][v], t["torch"][v]), "{:.2f}"),
                           spread(ratio_col(t["deltaprop"][v], t["sklearn"][v]), "{:.2f}")])
        out.append(f"{label}\n\n" + table([key] + list(IMPLS) + ["dp ÷ torch", "dp ÷ sklearn"], rows))
    return "\n\n".join(out)


# -- the machine -------------------------------------------------------------------------------------
def cpu_name() -> tuple[str, str]:
    """(model name with family, model and widest vector unit; vendor) from /proc/cpuinfo: each CPU seen
    gets its own section in RESULTS.md (the same model name covers several generations)."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    vendor = {"AuthenticAMD": "AMD", "GenuineIntel": "Intel"}.get(fields.get("vendor_id", ""), fields.get("vendor_id"))
    flags = fields.get("flags", "").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    cpu = fields.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in fields:
        cpu += f" (family {fields['cpu family']}, model {fields.get('model', '?')}, {vector})"
    return cpu, vendor or "unknown vendor"


def machine(threads) -> str:
    info = run_worker({"kind": "info", "impl": "deltaprop"}, threads)
    cpu, vendor = cpu_name()
    kernels = ", ".join(b["architecture"] for b in info["blas"] if b["user_api"] == "blas")
    import importlib.metadata as md

    def ver(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    blas = [f"{b['internal_api']} {b['version']} kernel {b['architecture']}, {b['num_threads']} threads"
            for b in info["blas"] if b["user_api"] == "blas"]
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")}
    return "\n".join([
        f"## Host: {vendor} — {cpu}, NumPy's BLAS kernel {kernels or '?'}",
        "",
        f"- CPU: {cpu} (vendor {vendor}), {os.cpu_count()} logical cores; Python {platform.python_version()} on "
        f"{platform.platform()}",
        f"- deltaprop {ver('deltaprop')}, NumPy {ver('numpy')}, PyTorch {ver('torch')}, scikit-learn {ver('scikit-learn')}, "
        f"threadpoolctl {ver('threadpoolctl')}",
        f"- NumPy BLAS: {'; '.join(blas)}; threads pinned to {threads} for every library",
        f"- environment: {', '.join(f'{k}={v}' for k, v in env.items())}",
        f"- deltaprop's Adam and momentum updates: {info.get('update_loops', '?')}",
    ])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repetition of a reduced set: about a minute")
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    ap.add_argument("--reps", type=int, help="repetitions (default 3; 1 with --quick)")
    ap.add_argument("--epochs", type=int, help="Fashion-MNIST epochs (default 20; 1 with --quick)")
    ap.add_argument("--steps", type=int, help="full-batch steps of the small networks (default 2000; 300 with --quick)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--noisy", type=float, default=0.25,
                    help="re-measure when other processes used more than this many cores meanwhile (default 0.25)")
    ap.add_argument("--json", help="write every raw measurement to this file")
    args = ap.parse_args(argv)
    q = args.quick
    args.reps = args.reps or (1 if q else 3)
    args.epochs = args.epochs or (1 if q else 20)
    args.steps = args.steps or (300 if q else 2000)
    args.blocks = 3 if q else 7
    args.sweep_epochs = 1 if q else 2
    args.infer_repeats = 5 if q else 20
    args.batch_sizes = [16, 1024] if q else [16, 32, 64, 128, 256, 512, 1024]
    args.widths = [64, 256] if q else [64, 128, 256, 512, 1024, 2048]
    args.width_rows = 5000 if q else 10000
    args.rows = [1000, 10000] if q else [1000, 3000, 10000, 30000, 60000]
    args.est_epochs = 3
    args.est_repeats = 3 if q else 5
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    for s in sections:
        if s not in SECTIONS:
            ap.error(f"unknown section {s!r}; choose from {', '.join(SECTIONS)}")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        log("note: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set; they force an older OpenBLAS kernel. To measure "
            "what this NumPy can do: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py")
    started = time.perf_counter()
    cases = {}
    if "fmnist" in sections:
        cases.update(fmnist_cases(args))
    if "floor" in sections or "batch" in sections:
        cases.update(floor_cases(args, [128] + (args.batch_sizes if "batch" in sections else [])))
    if "small" in sections:
        cases.update(small_cases(args))
    if "batch" in sections:
        cases.update(batch_cases(args))
    if "infer" in sections:
        cases.update(infer_cases(args))
    if "scaling" in sections:
        cases.update(scaling_cases(args))
    if "estimator" in sections:
        cases.update(estimator_cases(args))
    res = interleaved(cases, args.reps, args.threads, log, quiet_s=20 if q else 120, noisy=args.noisy)

    out = [f"# deltaprop benchmark ({'quick' if q else 'full'}: {args.reps} repetitions, interleaved)", "",
           machine(args.threads), "", f"Command: `{' '.join(['python'] + sys.argv)}`", ""]
    fm = {k: v for k, v in res.items() if k.startswith("fmnist-")} or None
    prods = None
    if fm:
        out += ["## Fashion-MNIST 784-256-128-10, batch 128", "", fmnist_report(res, args), ""]
    if "gemm" in res:
        text, prods = floor_report(res, fm)
        if "floor" in sections:
            out += ["## The floor: matrix products at the measured GEMM rate", "", text, ""]
    if "small" in sections:
        out += [f"## Small networks, full-batch gradient descent, {args.steps} steps", "",
                small_report({k: res[k] for k in res if k.startswith(("digits", "3-4-3-2"))}, args), ""]
    if "batch" in sections:
        out += ["## Batch size, 784-256-128-10 SGD lr 0.1, one epoch of 60,000 rows", "", batch_report(res, prods), ""]
    if "infer" in sections:
        out += ["## Inference, 784-256-128-10", "", infer_report(res), ""]
    if "scaling" in sections:
        out += ["## Scaling", "", scaling_report(res, args), ""]
    if "estimator" in sections:
        out += ["## The estimator beside the engine, Fashion-MNIST", "", estimator_report(res, args), ""]
    noisy = [f"{case}/{impl} rep {i + 1} ({r['others_cores']:.2f} cores)" for case, by in res.items()
             for impl, rs in by.items() for i, r in enumerate(rs) if r["others_cores"] > args.noisy]
    out.append("Kept although other processes were busy meanwhile: " + (", ".join(noisy) if noisy else "none") + ".")
    out.append(f"Total wall time {time.perf_counter() - started:.0f} s.")
    print("\n".join(out))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": res}, indent=1))


if __name__ == "__main__":
    main()
