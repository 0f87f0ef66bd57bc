"""Adam's update inside a training against the same update hot in cache: where Adam's extra time goes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/update_in_context.py --rounds 2

Trains the Fashion-MNIST network of bench/run.py (784-256-128-10 ReLU, batch 128, float32) with plain SGD
and with Adam, alternating, in one process with the compiled step and update loop loaded as a long run
loads them. For each training: µs a step, and for Adam the median time of its update call within the
training (``optimizer.step``: the compiled loop over θ, g, m and v, 235,146 parameters each) against the
same call repeated back to back on the same arrays (hot in cache). The update reads g, m, v and θ and
writes m, v and θ: 6.6 MB a step. When the in-training time is near the hot one, the host's shared L3
cache kept that state between steps; when it is about twice as long or more, the state came from memory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deltaprop as dp  # noqa: E402
import workers  # noqa: E402  (bench/workers.py: the Fashion-MNIST arrays as bench/run.py reads them)
from deltaprop import kernels  # noqa: E402


def train(X, y, optimizer: str, epochs: int) -> dict:
    net = dp.Network.from_sizes([784, 256, 128, 10], hidden="relu", seed=0, dtype="float32")
    opt = dp.make_optimizer(optimizer, lr=0.1 if optimizer == "sgd" else 1e-3)
    inside, step = [], opt.step

    def timed(params, grads):
        t0 = time.perf_counter()
        step(params, grads)
        inside.append(time.perf_counter() - t0)
        timed.last = (params, grads)
    opt.step = timed
    t0 = time.perf_counter()
    dp.fit(net, X, y, epochs=epochs, batch_size=128, optimizer=opt, seed=0, validation_fraction=0.0)
    steps = epochs * -(-X.shape[0] // 128)
    result = {"step_us": (time.perf_counter() - t0) / steps * 1e6}
    if inside:
        params, grads = timed.last
        hot = []
        for _ in range(50):  # the same call back to back: its arrays stay in cache
            t1 = time.perf_counter()
            step(params, grads)
            hot.append(time.perf_counter() - t1)
        result.update(update_us=statistics.median(inside) * 1e6, hot_us=statistics.median(hot[5:]) * 1e6)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="SGD then Adam trainings, this many times")
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args(argv)
    if not (kernels.load_step(np.float32) and kernels.load("adam", np.float32)):
        sys.exit(f"the compiled step and update loop did not load: {kernels.status()} (pip install 'deltaprop[fast]')")
    X, y, _, _ = workers.fashion_mnist()
    for r in range(args.rounds):
        sgd, adam = train(X, y, "sgd", args.epochs), train(X, y, "adam", args.epochs)
        print(f"round {r + 1}: SGD {sgd['step_us']:.0f} µs a step, Adam {adam['step_us']:.0f} "
              f"(Adam ÷ SGD {adam['step_us'] / sgd['step_us']:.2f}); Adam's update {adam['update_us']:.0f} µs "
              f"within the training, {adam['hot_us']:.0f} µs hot", flush=True)


if __name__ == "__main__":
    main()
