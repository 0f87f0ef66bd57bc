"""Adam ÷ SGD epoch of deltaprop, in pairs of fresh processes: SGD then Adam, the same Fashion-MNIST
training as bench/run.py's (784-256-128-10, batch 128), the ratio taken within each pair.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/adam_ratio.py --pairs 6
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


def epoch_seconds(optimizer: str, epochs: int, batch: int, threads: int) -> float:
    task = json.dumps({"kind": "train", "impl": "deltaprop", "data": "fashion-mnist", "sizes": [784, 256, 128, 10],
                       "epochs": epochs, "batch_size": batch, "optimizer": optimizer,
                       "lr": 0.1 if optimizer == "sgd" else 1e-3, "accuracy": False, "threads": threads})
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"))
    proc = subprocess.run([sys.executable, str(HERE / "workers.py"), task], env=env, capture_output=True, text=True,
                          check=True)
    return statistics.median(json.loads(proc.stdout.strip().splitlines()[-1])["epoch_s"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    args = ap.parse_args(argv)
    rows = []
    for i in range(args.pairs):
        sgd = epoch_seconds("sgd", args.epochs, args.batch, args.threads)
        adam = epoch_seconds("adam", args.epochs, args.batch, args.threads)
        rows.append((sgd, adam))
        print(f"pair {i + 1}: SGD {sgd:.3f} s/epoch, Adam {adam:.3f}, Adam ÷ SGD {adam / sgd:.3f}", flush=True)
    ratios = [a / s for s, a in rows]
    print(f"median Adam ÷ SGD {statistics.median(ratios):.3f} [{min(ratios):.3f}–{max(ratios):.3f}]; "
          f"SGD {statistics.median(s for s, _ in rows):.3f}, Adam {statistics.median(a for _, a in rows):.3f} s/epoch")


if __name__ == "__main__":
    main()
