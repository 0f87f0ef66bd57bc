"""Outgrowing one machine, measured: search throughput on local processes vs a two-worker Dask cluster,
and out-of-core training vs training in memory on Fashion-MNIST saved as .npy.

    python bench/scale.py search     # digits, a grid of 8 combinations × 3 folds, local vs LocalCluster
    python bench/scale.py epoch      # Fashion-MNIST as .npy: epoch time and peak memory, disk vs memory
    python bench/scale.py memmap     # why positioned reads: resident memory of a memmap gathered at random
    python bench/scale.py            # all three

Every training runs as ``deltaprop`` in a child process, measured from outside: wall time, the
command's own per-epoch times (history.csv) and the child's peak resident memory
(``getrusage(RUSAGE_CHILDREN)`` read in a parent that runs only that child). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
ENV = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join([str(ROOT / "src"),
                                                                     os.environ.get("PYTHONPATH", "")]))
MEASURE = ("import resource, subprocess, sys, time; t = time.perf_counter(); r = subprocess.run(sys.argv[1:], "
           "stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); w = time.perf_counter() - t; "
           "sys.stderr.buffer.write(r.stderr[-2000:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, w); sys.exit(r.returncode)")


def deltaprop(*args, cwd=None) -> tuple[float, float]:
    """Run ``deltaprop ARGS`` as a child of a fresh measuring parent: (wall seconds, peak RSS in MiB)."""
    cmd = [sys.executable, "-c", MEASURE, sys.executable, "-m", "deltaprop", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"failed: deltaprop {' '.join(map(str, args))}\n{proc.stderr}")
    rss_kib, wall = proc.stdout.split()
    return float(wall), int(rss_kib) / 1024


def machine() -> str:
    import numpy

    try:
        import distributed

        dask_version = distributed.__version__
    except ImportError:
        dask_version = "not installed"
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = os.getloadavg()
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {numpy.__version__}, "
            f"distributed {dask_version}; load average at start {load[0]:.1f} (1 min), {load[1]:.1f} (5 min)")


# -- search throughput ----------------------------------------------------------------------------------
def bench_search(reps: int) -> None:
    from distributed import LocalCluster

    grid = ["--grid", "layers=32|64,32", "--grid", "lr=0.01|0.003", "--grid", "l2=0|1e-3", "--cv", "3",
            "--epochs", "20", "--no-retrain", "--no-plots", "-q"]
    fits = 8 * 3
    rows = []
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                                           host="127.0.0.1", dashboard_address=None) as cluster:
        for rep in range(reps):
            for where, extra in (("local, 2 processes", ["--workers", "2"]),
                                 ("Dask LocalCluster, 2 workers", ["--scheduler", cluster.scheduler_address])):
                out = Path(tmp) / f"{rep}-{len(extra)}-{where[:5]}"
                wall, rss = deltaprop("search", *grid, *extra, "--out", out)
                fit_s = [float(r["fit_seconds"]) for r in csv.DictReader(open(out / "search.csv"))]
                rows.append((where, rep, wall, fits / wall, float(np.mean(fit_s))))
    print("\n### Search throughput: digits, 8 combinations × 3 folds = 24 fits of 20 epochs\n")
    print("| where | rep | wall s (whole command) | fits/s | mean s per fit (in the worker) |")
    print("| --- | --- | --- | --- | --- |")
    for where, rep, wall, rate, per in rows:
        print(f"| {where} | {rep + 1} | {wall:.2f} | {rate:.2f} | {per:.3f} |")


# -- out-of-core epoch ----------------------------------------------------------------------------------
def fashion_npy() -> Path:
    """Fashion-MNIST's four IDX files saved once as X.npy, y.npy, X_test.npy, y_test.npy (uint8 pixels)."""
    target = CACHE / "fashion-mnist-npy"
    if not (target / "y_test.npy").exists():
        sys.path.insert(0, str(ROOT / "src"))
        from deltaprop.io.datasets import load_fashion_mnist

        X, y, X_test, y_test = load_fashion_mnist()
        target.mkdir(parents=True, exist_ok=True)
        for name, a in (("X", X), ("y", y), ("X_test", X_test), ("y_test", y_test)):
            np.save(target / f"{name}.npy", a)
    return target


def epoch_times(run_dir: Path) -> list[float]:
    with open(run_dir / "history.csv", newline="") as f:
        return [float(r["time"]) for r in csv.DictReader(f)]


def bench_epoch(reps: int, epochs: int) -> None:
    data = fashion_npy()
    size = sum(os.path.getsize(data / f) for f in ("X.npy", "X_test.npy"))
    common = ["--layers", "256,128", "--epochs", epochs, "--no-plots", "-q", "--seed", "0"]
    runs = (("on disk, read by blocks", ["--data", data]),
            ("in memory, --shuffle blocks", ["--data", data, "--in-memory", "--shuffle", "blocks"]),
            ("in memory, rows shuffled (the default in memory)", ["--data", data, "--in-memory"]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            for name, extra in runs:
                out = Path(tmp) / f"{rep}-{len(extra)}"
                wall, rss = deltaprop("train", *extra, *common, "--out", out)
                times = epoch_times(out)
                acc = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
                rows.append((name, rep, float(np.median(times)), wall, rss, acc))
    print(f"\n### Fashion-MNIST as .npy (uint8, {size / 2**20:.0f} MiB on disk; 54,000 training rows after the "
          f"validation split), 784-256-128-10, Adam, batch 64, float32, {epochs} epochs\n")
    print("| rows | rep | median s/epoch | wall s (whole command) | peak RSS MiB | test accuracy |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rep, epoch, wall, rss, acc in rows:
        print(f"| {name} | {rep + 1} | {epoch:.3f} | {wall:.1f} | {rss:.0f} | {acc:.4f} |")


# -- memmap vs positioned reads ----------------------------------------------------------------------------
GATHER = """
import sys, numpy as np
sys.path.insert(0, sys.argv[3])
path, how = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
if how == "memmap":
    X = np.load(path, mmap_mode="r")
    m = X.shape[0]
    for _ in range(m // 64):
        idx = np.sort(rng.choice(m, 64, replace=False))
        batch = np.asarray(X[idx], dtype=np.float32)
else:
    from deltaprop.io.blocks import NpyRows
    rows = NpyRows(path)
    m = rows.shape[0]
    for k in rng.permutation(-(-m // 1024)):  # the blocks in a random order, as training reads them
        block = rows.read(k * 1024, (k + 1) * 1024)
# VmHWM (this process's own peak), not getrusage: after fork and exec, ru_maxrss starts from the
# parent's resident size at the fork.
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")) / 1024)
"""


def bench_memmap() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "X.npy"
        m, n = 100_000, 512
        rng = np.random.default_rng(0)
        with open(path, "wb") as f:
            np.lib.format.write_array_header_2_0(f, {"descr": "<f4", "fortran_order": False, "shape": (m, n)})
            for _ in range(0, m, 10_000):
                f.write(rng.normal(size=(10_000, n)).astype(np.float32).tobytes())
        size = os.path.getsize(path) / 2**20
        out = {}
        for how in ("memmap", "pread"):
            proc = subprocess.run([sys.executable, "-c", GATHER, str(path), how, str(ROOT / "src")],
                                  capture_output=True, text=True)
            out[how] = float(proc.stdout.split()[-1])
    print(f"\n### One pass over a {size:.0f} MiB float32 .npy: peak resident memory of the reading process\n")
    print("| how | peak RSS MiB |")
    print("| --- | --- |")
    print(f"| numpy.memmap, batches of 64 random rows gathered | {out['memmap']:.0f} |")
    print(f"| NpyRows, blocks of 1024 rows by positioned reads (io/blocks.py) | {out['pread']:.0f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", nargs="*", metavar="search|epoch|memmap", help="what to measure (default: all three)")
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    args.what = args.what or ["search", "epoch", "memmap"]
    unknown = set(args.what) - {"search", "epoch", "memmap"}
    if unknown:
        p.error(f"unknown: {', '.join(sorted(unknown))} (choose from search, epoch, memmap)")
    print(f"machine: {machine()}")
    print(f"command: python bench/scale.py {' '.join(sys.argv[1:])}".rstrip())
    started = time.perf_counter()
    if "search" in args.what:
        bench_search(args.reps)
    if "epoch" in args.what:
        bench_epoch(args.reps, args.epochs)
    if "memmap" in args.what:
        bench_memmap()
    print(f"\n({time.perf_counter() - started:.0f} s in all; load average at the end "
          f"{os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
