"""One measurement in a fresh process: ``python bench/workers.py '<json task>'`` prints one JSON line.

Each measurement runs in its own process so that its peak memory is its own, and so that one
library's thread pool (PyTorch's OpenMP, say) never competes with another's (NumPy's OpenBLAS) on
the two cores. Threads are pinned to ``task["threads"]`` for every library alike.

A task is a dict with ``kind`` (which measurement), ``impl`` (deltaprop, torch, sklearn) and the
settings of that measurement; see ``TASKS`` at the bottom for the kinds.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"


# -- environment ------------------------------------------------------------------------------------
def pin_threads(n: int, impl: str):
    """Every BLAS/OpenMP pool in this process to n threads (the same for every library).

    The library is imported first, so that the pools it loads (scikit-learn's SciPy, PyTorch's
    OpenMP) exist when the limit is set.
    """
    from threadpoolctl import threadpool_limits

    if impl == "torch":
        import torch

        torch.set_num_threads(n)
        torch.set_num_interop_threads(1)
    elif impl == "sklearn":
        import sklearn.neural_network  # noqa: F401
    else:
        import deltaprop  # noqa: F401
    return threadpool_limits(n)


def rss_mb() -> float:
    """Resident set size now, in MB (10^6 bytes)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def blas_info() -> list:
    from threadpoolctl import threadpool_info

    return [{k: i.get(k) for k in ("user_api", "internal_api", "version", "architecture", "num_threads", "filepath")}
            for i in threadpool_info()]


# -- data -------------------------------------------------------------------------------------------
def fashion_mnist():
    """(X_train, y_train, X_test, y_test): pixels / 255 as float32, labels int64.

    The decoded arrays are cached as .npy under bench/.cache (the .gz files take a second or two to
    inflate on every start); the cache holds nothing but what deltaprop.io.datasets read.
    """
    names = ("X_train", "y_train", "X_test", "y_test")
    paths = [CACHE / f"fashion-mnist-{n}.npy" for n in names]
    if not all(p.exists() for p in paths):
        from deltaprop.io.datasets import load_fashion_mnist

        CACHE.mkdir(exist_ok=True)
        X_tr, y_tr, X_te, y_te = load_fashion_mnist()
        for p, a in zip(paths, (X_tr, y_tr, X_te, y_te)):
            tmp = p.with_suffix(".tmp.npy")
            np.save(tmp, a)
            os.replace(tmp, p)
    X_tr, y_tr, X_te, y_te = (np.load(p) for p in paths)
    return _scaled(X_tr), y_tr, _scaled(X_te), y_te


def _scaled(X_uint8):
    """uint8 pixels → float32 in [0, 1], without a float64 intermediate."""
    X = X_uint8.astype(np.float32)
    X *= np.float32(1 / 255)
    return X


def digits():
    from deltaprop.io.datasets import load_digits

    X, y = load_digits()
    return (X / 16.0).astype(np.float32), y


def tiny(m: int = 200, seed: int = 0):
    """200 rows of 3 features, 2 classes: a seeded toy problem for the 3-4-3-2 network."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, 3)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] + 0.5 * X[:, 2] > 0).astype(np.int64)
    return X, y


# -- the three implementations ----------------------------------------------------------------------
class DeltapropImpl:
    name = "deltaprop"
    threads = 1  # Trainer(threads=...): 2 splits each batch over two threads (deltaprop.parallel)

    def __init__(self, sizes, hidden, seed):
        import deltaprop as dp

        self.dp = dp
        self.net = dp.Network.from_sizes(sizes, hidden=hidden, output="softmax", seed=seed, dtype="float32")
        self.seed = seed
        self.long_run = False  # set by train_once: a Fashion-MNIST task, whose full-length run is 20 epochs

    def train(self, X, y, epochs, batch_size, optimizer, lr):
        """Seconds of each epoch, measured by a callback (the trainer's own bookkeeping included)."""
        dp = self.dp
        times = []
        self.cpu_times = cpu = []

        class Clock(dp.Callback):
            def on_epoch_begin(self, trainer, epoch):
                self.c0 = time.process_time()
                self.t0 = time.perf_counter()

            def on_epoch_end(self, trainer, logs):
                times.append(time.perf_counter() - self.t0)
                cpu.append(time.process_time() - self.c0)

        # Plain SGD is made explicitly: the trainer's "sgd" with its default momentum is momentum SGD.
        opt = dp.make_optimizer("sgd", lr=lr) if optimizer == "sgd" else dp.make_optimizer("adam", lr=lr)
        if self.long_run:
            # The compiled training step and Adam's compiled update loop (deltaprop.kernels, with Numba
            # installed) are loaded as in a run of the benchmark's full 20 Fashion-MNIST epochs, before the
            # first epoch: ~0.5 s once per process, outside the epochs, as PyTorch's own import is.
            # --quick's epochs alone would not load them. The small networks' 2,000 steps take the NumPy
            # step, as a run of that length does.
            load_update_loops()
        dp.fit(self.net, X, y, epochs=epochs, batch_size=batch_size, optimizer=opt, seed=self.seed,
               callbacks=[Clock()],
               **({"threads": self.threads} if self.threads != 1 else {}))  # older versions take no threads
        return times

    def predict(self, X):
        return self.net.predict(X)


class DeltapropSplitImpl(DeltapropImpl):
    """deltaprop with each batch split over two Python threads, one BLAS thread each (threads=2)."""

    name = "deltaprop-2t"
    threads = 2


class TorchImpl:
    """PyTorch written as its tutorials do: tensors preloaded, index batching, torch.optim."""

    name = "torch"

    def __init__(self, sizes, hidden, seed):
        import torch

        self.torch = torch
        torch.manual_seed(seed)
        act = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}[hidden]
        mods = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            mods.append(torch.nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                mods.append(act())
        self.model = torch.nn.Sequential(*mods)
        self.gen = torch.Generator().manual_seed(seed)

    def train(self, X, y, epochs, batch_size, optimizer, lr):
        torch = self.torch
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        n = Xt.shape[0]
        bs = n if batch_size is None else batch_size
        model = self.model
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd" else \
            torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        times = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            total = 0.0
            if bs >= n:  # full batch: no shuffling to do
                opt.zero_grad()
                loss = loss_fn(model(Xt), yt)
                loss.backward()
                opt.step()
                total += loss.item()
            else:
                perm = torch.randperm(n, generator=self.gen)
                for start in range(0, n, bs):
                    idx = perm[start:start + bs]
                    opt.zero_grad()
                    loss = loss_fn(model(Xt[idx]), yt[idx])
                    loss.backward()
                    opt.step()
                    total += loss.item()
            times.append(time.perf_counter() - t0)
        return times

    def predict(self, X):
        torch = self.torch
        self.model.eval()
        with torch.inference_mode():
            return self.model(torch.from_numpy(X)).argmax(dim=1).numpy()


class SklearnImpl:
    """MLPClassifier with deltaprop's settings: no L2 (alpha=0), plain SGD (momentum=0) or Adam, no
    early stopping, shuffled, float32 kept. fit runs all epochs in one call: seconds per epoch are
    the total divided by the epochs."""

    name = "sklearn"

    def __init__(self, sizes, hidden, seed):
        self.sizes, self.hidden, self.seed = sizes, hidden, seed
        self.clf = None

    def train(self, X, y, epochs, batch_size, optimizer, lr):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        self.clf = MLPClassifier(
            hidden_layer_sizes=tuple(self.sizes[1:-1]), activation={"sigmoid": "logistic"}.get(self.hidden, self.hidden),
            solver=optimizer, alpha=0.0, batch_size=X.shape[0] if batch_size is None else batch_size,
            learning_rate="constant", learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False,
            max_iter=epochs, shuffle=True, random_state=self.seed, tol=0.0, n_iter_no_change=epochs + 1,
            early_stopping=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            self.clf.fit(X, y)
            total = time.perf_counter() - t0
        return [total / epochs] * epochs

    def predict(self, X):
        return self.clf.predict(X)


IMPLS = {"deltaprop": DeltapropImpl, "deltaprop-2t": DeltapropSplitImpl, "torch": TorchImpl,
         "sklearn": SklearnImpl}


# -- measurements -----------------------------------------------------------------------------------
def load_data(task):
    """(X, y, X_test, y_test) for task["data"]: fashion-mnist, digits or tiny (test = train for the last two)."""
    data = task["data"]
    if data == "fashion-mnist":
        return fashion_mnist()
    X, y = digits() if data == "digits" else tiny()
    return X, y, X, y


def first_rows(X, y, rows):
    """The first ``rows`` rows of a fixed seeded permutation, contiguous (every class represented)."""
    if not rows or rows >= X.shape[0]:
        return X, y
    keep = np.random.default_rng(1).permutation(X.shape[0])[:rows]
    return np.ascontiguousarray(X[keep]), y[keep]


def warm_up(setting, X, y):
    """A throwaway model trains on a few batches first: library start-up (thread pools, PyTorch's
    first autograd pass) is paid by every tool once per process, not per epoch."""
    bs = setting.get("batch_size") or X.shape[0]
    rows = min(X.shape[0], 4 * bs)
    impl = IMPLS[setting["impl"]](setting["sizes"], setting.get("hidden", "relu"), 0)
    impl.train(X[:rows], y[:rows], 2, setting.get("batch_size"), setting["optimizer"], setting["lr"])


def train_once(setting, X, y, X_test, y_test):
    X, y = first_rows(X, y, setting.get("rows"))
    warm_up(setting, X, y)
    impl = IMPLS[setting["impl"]](setting["sizes"], setting.get("hidden", "relu"), setting.get("seed", 0))
    impl.long_run = setting["data"] == "fashion-mnist"
    times = impl.train(X, y, setting["epochs"], setting.get("batch_size"), setting["optimizer"], setting["lr"])
    acc = float(np.mean(impl.predict(X_test) == y_test)) if setting.get("accuracy", True) else None
    # CPU seconds of the process per epoch (deltaprop only): with one BLAS thread a figure that other
    # processes on a shared host disturb far less than the wall time.
    return {"epoch_s": times, "epoch_cpu_s": getattr(impl, "cpu_times", None), "accuracy": acc, "rows": int(X.shape[0])}


def task_train(task):
    """Train once; seconds per epoch, test accuracy, and the process's memory at each stage."""
    rss_start = rss_mb()
    X, y, X_test, y_test = load_data(task)
    data_mb = (X.nbytes + X_test.nbytes) / 1e6 if task["data"] == "fashion-mnist" else X.nbytes / 1e6
    rss_data = rss_mb()
    result = train_once(task, X, y, X_test, y_test)
    result.update(peak_rss_mb=peak_rss_mb(), rss_start_mb=rss_start, rss_after_data_mb=rss_data, data_mb=data_mb)
    if task.get("floor"):
        # The floor measured right after the training, in the same process: the machine's speed
        # drifts over minutes (shared hosts), so the multiple is taken against this one.
        n, bs = result["rows"], task["batch_size"]
        full, tail = divmod(n, bs)
        ms = [bs] + ([tail] if tail else [])
        gemm = task_gemm({"impl": "numpy", "sizes": task["sizes"], "batches": ms, "blocks": 5, "big": False})
        per_m = {m: sum(p["s"] for p in gemm["products"] if p["m"] == m) for m in ms}
        result["floor_s"] = full * per_m[bs] + (per_m[tail] if tail else 0.0)
    return result


def task_sweep(task):
    """Several trainings in one process (data loaded once): task["sweep"] lists what changes."""
    X, y, X_test, y_test = load_data(task)
    results = []
    for change in task["sweep"]:
        setting = {**task, **change}
        results.append({**change, **train_once(setting, X, y, X_test, y_test)})
    return {"runs": results}


def task_infer(task):
    """Predictions per second on the 10,000 test images (class indices, whole array in one call)."""
    _, _, X_test, _ = fashion_mnist()
    impl = IMPLS[task["impl"]](task["sizes"], "relu", task.get("seed", 0))
    if task["impl"] == "sklearn":  # sklearn needs a fit before it predicts: one short one
        X, y, _, _ = fashion_mnist()
        impl.train(X[:1000], y[:1000], 1, 128, "sgd", 0.1)
    for _ in range(3):
        impl.predict(X_test)
    times = []
    for _ in range(task["repeats"]):
        t0 = time.perf_counter()
        impl.predict(X_test)
        times.append(time.perf_counter() - t0)
    return {"seconds": times, "rows": int(X_test.shape[0]),
            "products_s": forward_products_seconds(task["sizes"], X_test)}


def forward_products_seconds(sizes, X, repeats: int = 5) -> float:
    """Seconds of the forward pass's matrix products alone (A_{l−1} W_lᵀ for every layer, NumPy's
    OpenBLAS, the whole X at once, into preallocated outputs), the fastest of ``repeats``: the
    floor that an inference pass on this process's BLAS cannot beat."""
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((b, a)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    outs = [np.empty((X.shape[0], W.shape[0]), np.float32) for W in Ws]
    best = float("inf")
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        A = X
        for W, out in zip(Ws, outs):
            np.matmul(A, W.T, out=out)
            A = out
        best = min(best, time.perf_counter() - t0)
    return best


def task_gemm(task):
    """Seconds of each matrix product of one training step at the real shapes (batch m), in the
    layout deltaprop uses: forward A_prev Wᵀ, dW = δᵀ A_prev, dA_prev = δ W (none for layer 1).
    Also the rate at 2048³. Median of several blocks of back-to-back calls."""
    sizes, batches, impl = task["sizes"], task["batches"], task["impl"]
    rng = np.random.default_rng(0)
    if impl == "torch":
        import torch

        def mm(a, b, out):
            torch.mm(a, b, out=out)

        def arr(shape):
            return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))

        def T(a):
            return a.t()
    else:
        def mm(a, b, out):
            np.matmul(a, b, out=out)

        def arr(shape):
            return rng.standard_normal(shape).astype(np.float32)

        def T(a):
            return a.T

    def timed(a, b, out, flops):
        calls = max(3, min(20000, int(2e9 / flops)))  # about 0.01 s a block at 200 GFLOP/s
        for _ in range(2):
            mm(a, b, out)
        blocks = []
        for _ in range(task["blocks"]):
            t0 = time.perf_counter()
            for _ in range(calls):
                mm(a, b, out)
            blocks.append((time.perf_counter() - t0) / calls)
        return float(np.median(blocks))

    products = []
    for m in batches:
        for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), 1):
            A_prev, W, delta = arr((m, n_in)), arr((n_out, n_in)), arr((m, n_out))
            flops = 2 * m * n_in * n_out
            products.append({"m": m, "layer": l, "product": "forward", "flops": flops,
                             "s": timed(A_prev, T(W), arr((m, n_out)), flops)})
            products.append({"m": m, "layer": l, "product": "dW", "flops": flops,
                             "s": timed(T(delta), A_prev, arr((n_out, n_in)), flops)})
            if l > 1:
                products.append({"m": m, "layer": l, "product": "dA", "flops": flops,
                                 "s": timed(delta, W, arr((m, n_in)), flops)})
    if not task.get("big", True):
        return {"products": products}
    big = arr((2048, 2048))
    out = arr((2048, 2048))
    s_big = timed(big, big, out, 2 * 2048**3)
    return {"products": products, "gflops_2048": 2 * 2048**3 / s_big / 1e9}


def task_estimator(task):
    """deltaprop's MLPClassifier beside the engine on the same work, interleaved in one process:
    ``MLPClassifier(solver="sgd", batch_size=128, alpha=1e-4)`` (one hidden layer of 100 ReLU units,
    Nesterov momentum 0.9, α = 0.001) and ``dp.fit`` with the same network, optimizer, L2, batch and
    epochs (accuracy not tracked, as the estimator does not). Seconds of each epoch from a callback
    in both, and each fit's total: what the estimator adds outside the epochs is fit − Σ epochs."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    import deltaprop as dp
    from deltaprop.estimators import MLPClassifier

    X, y, _, _ = fashion_mnist()
    epochs, reps = task.get("epochs", 3), task.get("repeats", 3)

    def clock(times):
        class Clock(dp.Callback):
            def on_epoch_begin(self, trainer, epoch):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, trainer, logs):
                times.append(time.perf_counter() - self.t0)

        return Clock()

    def estimator(seed):
        times = []
        clf = MLPClassifier(solver="sgd", batch_size=128, alpha=1e-4, max_iter=epochs, random_state=seed,
                            n_iter_no_change=epochs + 1, callbacks=[clock(times)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf.fit(X, y)
            return time.perf_counter() - t0, times

    def engine(seed):
        times = []
        net = dp.Network.from_sizes([X.shape[1], 100, 10], init="sklearn", seed=seed, dtype="float32")
        t0 = time.perf_counter()
        dp.fit(net, X, y, epochs=epochs, batch_size=128, optimizer="nesterov", lr=0.001, momentum=0.9, l2=1e-4,
               seed=seed, track_accuracy=False, callbacks=[clock(times)])
        return time.perf_counter() - t0, times

    estimator(0), engine(0)  # warm-up
    runs = {"estimator": [], "engine": []}
    for r in range(reps):
        for name, f in ((("estimator", estimator), ("engine", engine)) if r % 2 == 0 else
                        (("engine", engine), ("estimator", estimator))):
            fit_s, epoch_s = f(r)
            runs[name].append({"fit_s": fit_s, "epoch_s": epoch_s})
    return {"runs": runs, "epochs": epochs}


def load_update_loops() -> str:
    """Load deltaprop's compiled Adam update loop and SGD step (deltaprop.kernels, with Numba installed) as a
    long run does; returns what happened, for the report."""
    try:
        from deltaprop import kernels
    except ImportError:  # versions before the compiled loops
        return "none in this version"
    started = time.perf_counter()
    kernels.load("adam", "float32")
    if hasattr(kernels, "load_step"):  # versions before the compiled SGD step
        kernels.load_step("float32")
    return f"{kernels.status()}; loading took {time.perf_counter() - started:.2f} s"


def task_info(task):
    """What main() adds (the BLAS libraries, kernels and thread counts in use), and whether deltaprop's
    compiled update loops load here."""
    return {"update_loops": load_update_loops()}


TASKS = {"train": task_train, "sweep": task_sweep, "infer": task_infer, "gemm": task_gemm, "info": task_info,
         "estimator": task_estimator}


def main():
    task = json.loads(sys.argv[1])
    limiter = pin_threads(task.get("threads", 2), task["impl"])  # noqa: F841 (held for the whole run)
    result = TASKS[task["kind"]](task)
    result["blas"] = blas_info()
    if task["impl"] == "torch":
        import torch

        result["torch_threads"] = torch.get_num_threads()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
