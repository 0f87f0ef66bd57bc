"""One training step's forward and backward passes on two threads: the batch split in two halves.

A batch B of m rows splits into rows [0, h) and [h, m), h = ⌈m/2⌉. The gradient of the batch cost is
the sum of the halves' contributions when each half's output error is divided by the whole m:

    δ_L = s (A_L − Y)/m  row by row,  dW_l = δ_lᵀ A_{l−1} = Σ_halves δ_{l,half}ᵀ A_{l−1,half},
    db_l = Σ_rows δ_l = Σ_halves Σ_rows δ_{l,half}

so each half runs the network's own forward and backward (:meth:`deltaprop.Network.backward` with
``scale = s·|half|/m``, the L2 term (s λ/m) W_l in the first half only), and one addition of the two
flat gradient arrays gives the batch's gradient. The cost likewise:
J = (h J₁ + (m − h) J₂)/m + λ/(2m) Σ‖W‖².

The second half runs on a worker thread in a twin network whose layers share W_l and b_l with the
network (the same arrays) but keep their own caches and gradient buffers. NumPy releases the GIL in
its matrix products and element-wise loops, so the halves overlap; BLAS runs on one thread in each
(the trainer sets it), instead of OpenBLAS handing each small product to a second thread.

The result equals the one-thread step up to float32 rounding (the sums are grouped differently), and
the same seed gives the same bits from run to run (the split and the order of the sums are fixed).
"""

from __future__ import annotations

import math
import queue
import threading

import numpy as np

from deltaprop.layers import Dense
from deltaprop.losses import l2_cost

__all__ = ["SplitStep", "MIN_ROWS"]

#: Batches of fewer rows than this run on one thread (halves too small to pay for the hand-over).
MIN_ROWS = 32


class SplitStep:
    """The forward and backward passes of a batch as two halves on two threads (see the module).

    ``run(X, Y, l2, scale)`` returns J of the batch and leaves the batch's gradient in
    ``net.flat_grads()`` (and so in ``net.grads``), as ``forward(cache=True)``, ``cached_cost`` and
    ``backward`` in a row would. Call :meth:`close` (or use it as a context manager) to end the worker.
    """

    def __init__(self, net):
        from deltaprop.model import Network

        self.net = net
        twin = Network([Dense(layer.W, layer.b, layer.activation) for layer in net.layers], net.loss)
        self.twin = twin
        self._share()
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="deltaprop-split-step", daemon=True)
        self._thread.start()
        self.h = 0  # rows in the first half of the last batch

    def _share(self) -> None:
        """The twin's layers use the network's own W_l and b_l (rebound after a repacking of the network)."""
        for mine, theirs in zip(self.twin.layers, self.net.layers):
            if mine.W is not theirs.W or mine.b is not theirs.b:
                mine.W, mine.b = theirs.W, theirs.b
        self.twin._flat = None  # never packed: the twin owns no parameters

    @staticmethod
    def usable(net, m: int, sample_weight=None, sparse: bool = False) -> bool:
        """True when a batch of m rows can be split: dense input, no sample weights, every parameter in
        the network's flat array, and m ≥ 2·MIN_ROWS."""
        return sample_weight is None and not sparse and m >= 2 * MIN_ROWS and net.flat_params() is not None

    # -- the worker --------------------------------------------------------------------------------
    def _work(self) -> None:
        with np.errstate(over="ignore", invalid="ignore"):  # error state is per thread: as the trainer's
            while True:
                task = self._tasks.get()
                if task is None:
                    return
                fn, args = task
                try:
                    self._done.put(fn(*args))
                except BaseException as exc:  # handed to the main thread, raised there
                    self._done.put(exc)

    def both(self, fn, first_args, second_args):
        """``fn(*first_args)`` here and ``fn(*second_args)`` on the worker thread at the same time;
        returns both results (the worker's exception, if any, raised here)."""
        self._tasks.put((fn, second_args))
        try:
            first = fn(*first_args)
        finally:
            second = self._done.get()  # always collected, so that the next call starts clean
        if isinstance(second, BaseException):
            raise second
        return first, second

    @staticmethod
    def _half(net, X, Y, l2: float, scale: float) -> float:
        """Forward, data cost (without L2) and backward of one half; returns the half's J_data."""
        net.forward(X, cache=True, check=False)
        cost = net.cached_cost(Y, 0.0)
        net.backward(Y, l2, scale=scale)
        return cost

    # -- one step ----------------------------------------------------------------------------------
    def run(self, X, Y, l2: float = 0.0, scale: float = 1.0) -> float:
        """J of the batch (X, Y); the batch's gradient of scale·J lands in ``net.flat_grads()``."""
        net = self.net
        self._share()
        m = X.shape[0]
        h = self.h = (m + 1) // 2
        first, second = self.both(self._half, (net, X[:h], Y[:h], l2, scale * h / m),
                                  (self.twin, X[h:], Y[h:], 0.0, scale * (m - h) / m))
        grads, other = net.flat_grads(), self.twin.flat_grads()
        k = (grads.size // 2) & ~63
        self.both(np.add, (grads[:k], other[:k], grads[:k]), (grads[k:], other[k:], grads[k:]))
        data = (h * first + (m - h) * second) / m
        return data + l2_cost([layer.W for layer in net.layers], l2, m)

    def outputs(self) -> list:
        """[(A_L of the first half, 0), (A_L of the second half, h)] of the last batch."""
        return [(self.net.layers[-1].A, 0), (self.twin.layers[-1].A, self.h)]

    def delta_norms(self) -> list[float]:
        """‖δ_l‖ (Frobenius) of the last batch per layer, both halves together."""
        return [math.sqrt(float(np.vdot(a.delta, a.delta)) + float(np.vdot(b.delta, b.delta)))
                for a, b in zip(self.net.layers, self.twin.layers)]

    def close(self) -> None:
        if self._thread.is_alive():
            self._tasks.put(None)
            self._thread.join()

    def __enter__(self) -> SplitStep:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
