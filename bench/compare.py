"""Before/after: the same Fashion-MNIST training with two versions of deltaprop, alternating processes.

    git archive <old-commit> src | tar -x -C /tmp/old
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/compare.py --old /tmp/old/src --batch 128

Each pair runs the old version, then the new one, in fresh processes (bench/workers.py with
PYTHONPATH pointing at each ``src``); the ratio is taken within the pair, so a host that speeds up
or slows down between pairs does not bias it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True, help="the old version's src directory")
    ap.add_argument("--new", default=str(HERE.parent / "src"), help="the new version's src directory (default: this one)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    ap.add_argument("--cpu", action="store_true",
                    help="compare CPU seconds per epoch instead of wall seconds (with --threads 1: a figure that a "
                         "busy shared host disturbs far less)")
    args = ap.parse_args(argv)
    task = json.dumps({"kind": "train", "impl": "deltaprop", "data": "fashion-mnist", "sizes": [784, 256, 128, 10],
                       "epochs": args.epochs, "batch_size": args.batch, "optimizer": args.optimizer,
                       "lr": 0.1 if args.optimizer == "sgd" else 1e-3, "accuracy": False, "threads": args.threads})
    times = {"old": [], "new": []}
    for _ in range(args.pairs):
        for name in ("old", "new"):
            env = dict(os.environ, PYTHONPATH=os.path.abspath(getattr(args, name)))
            proc = subprocess.run([sys.executable, str(HERE / "workers.py"), task], env=env, capture_output=True,
                                  text=True, check=True)
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            times[name].append(statistics.median(result["epoch_cpu_s" if args.cpu else "epoch_s"]))
    unit = "CPU s/epoch" if args.cpu else "s/epoch"
    for name, ts in times.items():
        print(f"{name}: {unit} {', '.join(f'{t:.3f}' for t in ts)}; median {statistics.median(ts):.3f}")
    ratios = [b / a for a, b in zip(times["old"], times["new"])]
    print(f"new/old per pair: {', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
