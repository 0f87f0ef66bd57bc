"""deltaprop's MLPClassifier against scikit-learn's, with the same settings, side by side.

    python bench/estimators_vs_sklearn.py                      # digits, and Fashion-MNIST if installed
    python bench/estimators_vs_sklearn.py --threads 4 --repeats 5 --fashion-epochs 30
    python bench/estimators_vs_sklearn.py --skip-fashion --sections lbfgs,sparse   # the short cases only

Data: scikit-learn's 8×8 digits (X/16, a stratified 70/30 split drawn with seed 0) and, when
/usr/share/datasets/fashion-mnist/ exists (Debian/Ubuntu package ``dataset-fashion-mnist``),
Fashion-MNIST (X/255 as float32, its own 60000/10000 split). Both libraries get the same
settings: one hidden layer of 100 ReLU units, Adam with α₀ = 0.001, alpha = 1e-4,
batch_size='auto' (200), tol=1e-4 and n_iter_no_change=10; digits runs up to 200 epochs and
Fashion-MNIST a fixed number of epochs (``--fashion-epochs``). float32 input trains in float32 in
both libraries. Each library fits with random_state 0, 1, ... (``--repeats``); the table shows the
mean test accuracy (± standard deviation over seeds), the median fit time and the mean epoch count.
BLAS threads are pinned to ``--threads`` for both, through threadpoolctl.

Two more sections (``--sections``; all by default):

- ``lbfgs``: digits with ``solver='lbfgs'`` (up to 200 iterations, the whole data as one batch);
- ``sparse``: scipy.sparse CSR input with Adam: digits as CSR (half its pixels are 0), and a
  bag-of-words-like problem made here (4000 + 1000 rows, 20,000 features, 0.5 % stored, two classes
  from a sparse linear rule, seed 0), 30 epochs.

The same random_state gives both libraries the same model (tests/test_sklearn_parity.py), so the
accuracies agree and the times compare the same work.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np


def _digits():
    from deltaprop.io.datasets import load_digits, split

    X, y = load_digits()
    X_train, y_train, X_test, y_test = split(X / 16.0, y, test_fraction=0.3, seed=0)
    return X_train, y_train, X_test, y_test


def _fashion(rows: int | None):
    from deltaprop.io.datasets import load_fashion_mnist

    X_train, y_train, X_test, y_test = load_fashion_mnist(dtype="float32")
    X_train /= 255.0
    X_test /= 255.0
    if rows:
        X_train, y_train = X_train[:rows], y_train[:rows]
    return X_train, y_train, X_test, y_test


def _bag_of_words(seed: int = 0):
    """4000 train + 1000 test rows of 20,000 features, 0.5 % stored (CSR), labels from a sparse linear rule."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    X = sparse.random(5000, 20_000, density=0.005, format="csr", random_state=seed,
                      data_rvs=lambda k: rng.poisson(2.0, k) + 1.0)
    w = np.zeros(20_000)
    w[rng.choice(20_000, 400, replace=False)] = rng.normal(size=400)
    score = X @ w
    y = (score > np.median(score)).astype(int)
    return X[:4000], y[:4000], X[4000:], y[4000:]


def _csr(data):
    from scipy import sparse

    X_train, y_train, X_test, y_test = data
    return sparse.csr_matrix(X_train), y_train, sparse.csr_matrix(X_test), y_test


def _run(make, data, repeats: int):
    """(accuracies, seconds, epochs) of ``repeats`` fits with random_state 0..repeats−1."""
    X_train, y_train, X_test, y_test = data
    accs, secs, epochs = [], [], []
    for seed in range(repeats):
        est = make(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at the epoch limit, in both libraries
            started = time.perf_counter()
            est.fit(X_train, y_train)
            secs.append(time.perf_counter() - started)
        accs.append(float(est.score(X_test, y_test)))
        epochs.append(est.n_iter_)
    return accs, secs, epochs


def _row(name, accs, secs, epochs):
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return (f"  {name:<26} accuracy {100 * statistics.mean(accs):6.2f}% ± {100 * sd:4.2f}   "
            f"fit {statistics.median(secs):8.2f} s   epochs {statistics.mean(epochs):6.1f}")


def compare(title, data, settings, repeats, extra_dtype=None):
    from sklearn.neural_network import MLPClassifier as SkMLP

    from deltaprop.estimators import MLPClassifier as DpMLP

    X_train, _, X_test, _ = data
    kind = f"{type(X_train).__name__} " if not isinstance(X_train, np.ndarray) else ""
    print(f"{title}: {X_train.shape[0]} train / {X_test.shape[0]} test rows, {X_train.shape[1]} features, "
          f"{kind}{X_train.dtype}; {settings}")
    results = {}
    for name, make in (("scikit-learn", lambda s: SkMLP(**settings, random_state=s)),
                       ("deltaprop", lambda s: DpMLP(**settings, random_state=s))):
        results[name] = _run(make, data, repeats)
        print(_row(name, *results[name]), flush=True)
    if extra_dtype:
        name = f"deltaprop dtype={extra_dtype}"
        results[name] = _run(lambda s: DpMLP(**settings, random_state=s, dtype=extra_dtype), data, repeats)
        print(_row(name, *results[name]), flush=True)
    sk_acc, sk_sec = statistics.mean(results["scikit-learn"][0]), statistics.median(results["scikit-learn"][1])
    dp_acc, dp_sec = statistics.mean(results["deltaprop"][0]), statistics.median(results["deltaprop"][1])
    sk_ep, dp_ep = statistics.mean(results["scikit-learn"][2]), statistics.mean(results["deltaprop"][2])
    print(f"  accuracy difference (deltaprop − scikit-learn): {100 * (dp_acc - sk_acc):+.2f} points; "
          f"fit time ratio scikit-learn/deltaprop: {sk_sec / dp_sec:.2f}×; "
          f"per epoch: {(sk_sec / sk_ep) / (dp_sec / dp_ep):.2f}×\n", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both libraries (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="fits per library on digits (seeds 0..n−1)")
    parser.add_argument("--fashion-repeats", type=int, default=1, help="fits per library on Fashion-MNIST")
    parser.add_argument("--fashion-epochs", type=int, default=20, help="epochs on Fashion-MNIST (default 20)")
    parser.add_argument("--fashion-rows", type=int, default=None, help="use only the first N training rows")
    parser.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist", help=argparse.SUPPRESS)
    parser.add_argument("--skip-fashion", action="store_true")
    parser.add_argument("--sections", default="adam,lbfgs,sparse",
                        help="comma-separated: adam (digits, Fashion-MNIST), lbfgs, sparse (default: all)")
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))

    import sklearn
    from threadpoolctl import threadpool_info, threadpool_limits

    import deltaprop

    blas = ", ".join(sorted({f"{i['internal_api']} {i.get('version') or ''}".strip() for i in threadpool_info()}))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs; Python "
          f"{platform.python_version()}, NumPy {np.__version__} ({blas}), scikit-learn {sklearn.__version__}, "
          f"deltaprop {deltaprop.__version__}; {args.threads} BLAS thread(s)\n")
    common = dict(hidden_layer_sizes=(100,), activation="relu", solver="adam", alpha=1e-4, batch_size="auto",
                  learning_rate_init=0.001, tol=1e-4, n_iter_no_change=10)
    with threadpool_limits(limits=args.threads):
        if "adam" in sections:
            compare("digits", _digits(), dict(common, max_iter=200), args.repeats, extra_dtype="float32")
        if "lbfgs" in sections:
            compare("digits, lbfgs", _digits(), dict(common, solver="lbfgs", max_iter=200), args.repeats)
        if "sparse" in sections:
            compare("digits as CSR", _csr(_digits()), dict(common, max_iter=200), args.repeats)
            compare("bag of words (CSR)", _bag_of_words(), dict(common, max_iter=30), args.repeats)
        if args.skip_fashion or "adam" not in sections:
            return
        if not Path(args.fashion_dir).is_dir():
            print(f"Fashion-MNIST: {args.fashion_dir} not found (apt-get install dataset-fashion-mnist); skipped")
            return
        compare("Fashion-MNIST", _fashion(args.fashion_rows), dict(common, max_iter=args.fashion_epochs),
                args.fashion_repeats)


if __name__ == "__main__":
    main()
