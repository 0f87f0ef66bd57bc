"""Hyper-parameter search with k-fold cross-validation, on local processes or a Dask cluster.

A search is a list of *combinations* (dicts of train options: ``layers``, ``lr``, ``l2``, ...) drawn
from a :class:`Space` (a grid, or ``n`` random draws), each trained once per fold of a k-fold split
of the training rows and scored on the fold it did not see: accuracy for classes, R² for numbers.
Every fit is one call of :func:`fit_fold`, a plain function of (data, combination, fold) that
builds the network, fits the input scaling on the fold's training rows, trains with the engine's
:class:`~deltaprop.train.Trainer` and scores. It runs

- on local worker processes (``concurrent.futures`` with ``spawn``), the data pickled once into each
  worker when it starts; or
- on a Dask cluster (``scheduler="tcp://HOST:PORT"``): the data is scattered once to every worker
  (``Client.scatter(..., broadcast=True)``) and each fit is a task; Dask decides where it runs.

Either way each fit runs with ``threads`` BLAS threads (threadpoolctl), so the same search gives the
same scores wherever it runs, bit for bit, and a machine's cores are not oversubscribed. Nothing here
schedules work itself: the executor or Dask does.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from deltaprop.errors import ConfigError, DataError, DeltapropError
from deltaprop.train import TrainOptions

__all__ = ["Space", "SearchData", "parse_option", "kfold", "fit_fold", "run", "OPTION_KINDS", "result_rows",
           "check_combinations", "check_scheduler", "ClusterError", "MOMENTUM_OPTIMIZERS"]

# The train options a search may vary, with the kind of value each takes.
OPTION_KINDS = {
    "layers": "layers", "activation": "text", "optimizer": "text", "schedule": "text", "init": "text",
    "scale": "text", "dtype": "text", "lr": "float", "momentum": "float", "l2": "float",
    "epochs": "int", "batch_size": "int", "seed": "int",
}


# -- the space ------------------------------------------------------------------------------------
@dataclass
class Range:
    """Numbers from ``low`` to ``high``, drawn uniformly, or log-uniformly with ``log``."""

    low: float
    high: float
    log: bool = False

    def draw(self, rng: np.random.Generator, integer: bool):
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if integer else float(value)

    def __str__(self) -> str:
        return f"{self.low:g}..{self.high:g}{':log' if self.log else ''}"


def _value(name: str, text: str):
    kind = OPTION_KINDS[name]
    text = text.strip()
    try:
        if kind == "layers":
            sizes = [int(p) for p in text.replace(" ", "").split(",")] if text else []
            if any(s < 1 for s in sizes):
                raise ValueError
            return tuple(sizes)
        if kind == "int":
            return int(text)
        if kind == "float":
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        what = {"layers": "comma-separated layer sizes ≥ 1 (e.g. 64,32)", "int": "a whole number",
                "float": "a finite number"}[kind]
        raise ConfigError(f"{name}: {text!r} is not {what}", f"for example --grid '{name}=...'") from None
    if not text:
        raise ConfigError(f"{name}: an empty value", f"for example --grid '{name}=...'")
    return text


def parse_option(spec: str):
    """``'lr=0.01|0.001'`` → ('lr', [0.01, 0.001]); ``'lr=1e-4..1e-1:log'`` → ('lr', Range(...)).

    Values are separated by ``|``; ``layers`` values are comma-separated sizes (``'layers=32|64,32'``);
    ranges ``LOW..HIGH`` (``:log`` for log-uniform) are for numeric options and random search."""
    name, sep, values = str(spec).partition("=")
    name = name.strip().lstrip("-").replace("-", "_")
    if not sep or not name:
        raise ConfigError(f"cannot read the search option {spec!r}", "write NAME=V1|V2|..., e.g. 'lr=0.01|0.001'")
    if name not in OPTION_KINDS:
        raise ConfigError(f"{name!r} is not an option a search can vary",
                          "choose among " + ", ".join(sorted(OPTION_KINDS)))
    values = values.strip()
    if ".." in values and "|" not in values:
        low_text, _, high_text = values.partition("..")
        log = high_text.endswith(":log")
        high_text = high_text[: -len(":log")] if log else high_text
        if OPTION_KINDS[name] not in ("int", "float"):
            raise ConfigError(f"{name} takes listed values, not a range ({spec!r})", f"write '{name}=A|B|C'")
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise ConfigError(f"{name}: cannot read the range {values!r}", f"for example '{name}=1e-4..1e-1:log'") from None
        if not low < high or (log and low <= 0):
            raise ConfigError(f"{name}: the range {values!r} needs LOW < HIGH{' and LOW > 0 (log)' if log else ''}",
                              f"for example '{name}=1e-4..1e-1:log'")
        return name, Range(low, high, log)
    items = [_value(name, v) for v in values.split("|")]
    if len(set(items)) != len(items):
        raise ConfigError(f"{name} lists a value twice ({values!r})", "list each value once")
    return name, items


@dataclass
class Space:
    """The options to vary: ``{name: [values] or Range}``, in the order given."""

    options: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, specs) -> Space:
        space = cls()
        for spec in specs:
            name, values = parse_option(spec)
            if name in space.options:
                raise ConfigError(f"{name} is given twice", "give each option once, its values separated by |")
            space.options[name] = values
        return space

    def grid(self) -> list[dict]:
        """Every combination, the last option varying fastest."""
        ranges = [n for n, v in self.options.items() if isinstance(v, Range)]
        if ranges:
            raise ConfigError(f"{', '.join(ranges)} {'is a range' if len(ranges) == 1 else 'are ranges'}: a grid "
                              "needs listed values", "list values (A|B|C), or sample the ranges with --random N")
        names = list(self.options)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.options.values())]

    def sample(self, n: int, seed: int = 0) -> list[dict]:
        """``n`` combinations drawn with ``numpy.random.default_rng(seed)``: ranges uniformly (or
        log-uniformly), listed values with equal chances; repeats are drawn again (up to a limit)."""
        rng = np.random.default_rng(seed)
        out, seen = [], set()
        for _ in range(50 * n):
            combo = {}
            for name, values in self.options.items():
                if isinstance(values, Range):
                    combo[name] = values.draw(rng, OPTION_KINDS[name] == "int")
                else:
                    combo[name] = values[int(rng.integers(len(values)))]
            key = tuple(combo.items())
            if key not in seen:
                seen.add(key)
                out.append(combo)
            if len(out) == n:
                break
        return out


# -- folds and data -------------------------------------------------------------------------------
def kfold(y, k: int, seed: int = 0, stratify: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train rows, held-out rows) pairs: rows dealt at random into k folds of nearly equal size
    (per class when ``stratify``), drawn with ``numpy.random.default_rng(seed)``."""
    y = np.asarray(y)
    m = y.shape[0]
    if k < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {k}", "for example --cv 3")
    if m < k:
        raise DataError(f"{m} training rows cannot make {k} folds", "use fewer folds or more data")
    rng = np.random.default_rng(seed)
    fold = np.empty(m, dtype=np.int64)
    if stratify and y.ndim == 1:
        offset = 0
        for c in np.unique(y):
            rows = np.flatnonzero(y == c)
            rows = rows[rng.permutation(rows.shape[0])]
            fold[rows] = (np.arange(rows.shape[0]) + offset) % k  # continue the deal across classes
            offset += rows.shape[0]
    else:
        fold[rng.permutation(m)] = np.arange(m) % k
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(k)]


@dataclass
class SearchData:
    """What every fit needs, sent to each worker once: the training rows X (m, n) and targets y,
    the folds, class names (None for regression) and the data set's suggested input scaling."""

    X: np.ndarray
    y: np.ndarray
    folds: list
    class_names: list | None
    scaling: str = "standard"

    @property
    def task(self) -> str:
        return "regression" if self.class_names is None else "classification"


# -- one fit ------------------------------------------------------------------------------------
# The training options' defaults are the library's and the command's (deltaprop.train.TrainOptions).
_TRAIN = TrainOptions()
DEFAULTS = {"layers": (128, 64), "activation": "relu", "optimizer": _TRAIN.optimizer, "schedule": _TRAIN.schedule,
            "init": None, "scale": None, "dtype": "float32", "lr": _TRAIN.lr, "momentum": _TRAIN.momentum,
            "l2": _TRAIN.l2, "epochs": _TRAIN.epochs, "batch_size": _TRAIN.batch_size, "seed": _TRAIN.seed,
            "output": None, "loss": None, "full_batch": False, "class_weight": None}


# The optimizers that use a momentum μ (Adam has β₁ instead, and ignores it).
MOMENTUM_OPTIMIZERS = ("sgd", "momentum", "nesterov")


def _described(options: dict, names) -> str:
    return ", ".join(f"{n}={_cell(options.get(n))}" for n in names) or "the fixed options"


def check_combinations(data: SearchData, combinations: list[dict], names=()) -> None:
    """Every combination builds its network, scaling, optimizer, schedule and training options as
    :func:`fit_fold` will, before any fit runs: a value no fit can train with (an unknown activation, a
    negative learning rate, ``seed=-1``, a momentum of 1 or more) is a ConfigError naming the
    combination (by its searched options ``names``) instead of a column of NaN, or a failure half-way.

    A momentum given to an optimizer that does not use it (Adam) is refused too: the fits would not
    differ, and ``deltaprop train`` refuses that retraining."""
    from deltaprop.io.preprocessing import Scaler
    from deltaprop.model import Network
    from deltaprop.optim import make_optimizer, make_schedule
    from deltaprop.validation import check_number

    n_out = 1 if data.class_names is None and data.y.ndim == 1 else (
        data.y.shape[1] if data.class_names is None else len(data.class_names))
    for options in combinations:
        o = {**DEFAULTS, **options}
        try:
            check_number(o["seed"], "seed", 0, integer=True, hint="pass a whole number ≥ 0")
            if o["momentum"] is not None and str(o["optimizer"]).strip().lower() not in MOMENTUM_OPTIMIZERS:
                raise ConfigError(f"momentum is for {', '.join(MOMENTUM_OPTIMIZERS)}; {o['optimizer']} does not use it",
                                  "search momentum with --grid 'optimizer=momentum|nesterov', or leave it out")
            Scaler.from_spec(o["scale"] or data.scaling)
            output = ("sigmoid" if o["output"] == "sigmoid" else o["output"] or "softmax") \
                if data.class_names is not None else "identity"
            # The sizes do not change what is checked (names, pairing, dtype); one unit per layer costs nothing.
            Network.from_sizes([1] * (1 + len(o["layers"])) + [1 if output == "sigmoid" else n_out],
                               hidden=o["activation"], output=output, loss=o["loss"], seed=o["seed"], dtype=o["dtype"],
                               init=o["init"])
            make_optimizer(o["optimizer"], o["lr"], **({} if o["momentum"] is None else {"momentum": o["momentum"]}))
            make_schedule(o["schedule"])
            TrainOptions(epochs=o["epochs"], batch_size=None if o["full_batch"] else o["batch_size"], l2=o["l2"],
                         seed=o["seed"], class_weight=o["class_weight"])
        except DeltapropError as exc:
            raise ConfigError(f"the combination {_described(options, names)} cannot train: {exc.message}",
                              exc.hint or "change or drop that value") from None


def _worker_name() -> str:
    """The Dask worker's address inside a Dask task; ``host:pid`` in a local process."""
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return get_worker().address
        except (ValueError, ImportError):
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def fit_fold(data: SearchData, options: dict, fold: int, threads: int = 1) -> dict:
    """Train on every fold but ``fold`` with the train options ``options`` (over :data:`DEFAULTS`)
    and score on ``fold``: ``{"fold", "score", "seconds", "worker", "error"}``. Accuracy for classes,
    R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² for numbers. A fit that diverges scores NaN, with its message."""
    from deltaprop import metrics
    from deltaprop.io.preprocessing import Scaler
    from deltaprop.model import Network
    from deltaprop.train import Trainer

    o = {**DEFAULTS, **options}
    train, held = data.folds[fold]
    started = time.perf_counter()
    result = {"fold": fold, "worker": _worker_name(), "error": ""}
    with _blas_threads(threads):
        scaler = Scaler.from_spec(o["scale"] or data.scaling).fit(data.X[train])
        X_train = scaler.transform(data.X[train], dtype=o["dtype"])
        X_held = scaler.transform(data.X[held], dtype=o["dtype"])
        if data.class_names is not None:
            k = len(data.class_names)
            output = o["output"] or "softmax"
            n_out = 1 if output == "sigmoid" else k
        else:
            output, n_out = "identity", (1 if data.y.ndim == 1 else data.y.shape[1])
        net = Network.from_sizes([data.X.shape[1], *o["layers"], n_out], hidden=o["activation"], output=output,
                                 loss=o["loss"], seed=o["seed"], dtype=o["dtype"], init=o["init"])
        try:
            Trainer(net, X_train, data.y[train], epochs=o["epochs"],
                    batch_size=None if o["full_batch"] else o["batch_size"], optimizer=o["optimizer"], lr=o["lr"],
                    momentum=o["momentum"], schedule=o["schedule"], l2=o["l2"], seed=o["seed"],
                    class_weight=o["class_weight"]).run()
            predicted = net.predict(X_held)
            if data.class_names is not None:
                score = metrics.accuracy(data.y[held], predicted)
            else:
                score = metrics.r2_score(data.y[held], predicted[:, 0] if predicted.ndim == 2 and
                                         predicted.shape[1] == 1 and data.y.ndim == 1 else predicted)
        except DeltapropError as err:
            score, result["error"] = float("nan"), str(err).splitlines()[0]
    result["score"] = float(score)
    result["seconds"] = time.perf_counter() - started
    return result


class _blas_threads:
    """BLAS limited to ``n`` threads inside the block (threadpoolctl; nothing without it)."""

    def __init__(self, n: int):
        self.n, self.limit = n, None

    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return self
        self.limit = threadpool_limits(limits=self.n, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self.limit is not None:
            self.limit.restore_original_limits()


# -- local worker processes ---------------------------------------------------------------------
_LOCAL: dict = {}


def _local_init(data: SearchData) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends the pool
    _LOCAL["data"] = data


def _local_fit(task) -> tuple[int, dict]:
    i, options, fold, threads = task
    return i, fit_fold(_LOCAL["data"], options, fold, threads)


# -- the run --------------------------------------------------------------------------------------
def run(data: SearchData, combinations: list[dict], *, scheduler: str | None = None, workers: int | None = None,
        threads: int = 1, on_result=None, on_start=None, done: list[list[dict | None]] | None = None
        ) -> list[list[dict | None]]:
    """Every (combination, fold) fit, on local processes or the Dask cluster at ``scheduler``.

    Returns, per combination, its fold results (:func:`fit_fold`'s dicts; None where a fit did not
    run because the search was interrupted). ``on_start(n_fits, where)`` is called once the workers
    are up; ``on_result(i, result)`` after each fit, in the order they finish (combination i). Ctrl-C
    (KeyboardInterrupt) cancels the fits not yet done and re-raises with the partial results in
    ``err.results``. ``done`` (results of an earlier, stopped run of the same search) holds fits that are
    kept as they are and not run again."""
    k = len(data.folds)
    results: list[list] = [[None] * k for _ in combinations] if done is None else [list(r) for r in done]
    tasks = [(i, f) for i in range(len(combinations)) for f in range(k) if results[i][f] is None]
    if scheduler:
        runner = _run_dask
    else:
        runner = _run_local
    if not tasks:  # every fit was done before: nothing to start
        return results
    try:
        runner(data, combinations, tasks, results, scheduler=scheduler, workers=workers, threads=threads,
               on_result=on_result, on_start=on_start)
    except KeyboardInterrupt as stop:
        stop.results = results
        raise
    return results


def _run_local(data, combinations, tasks, results, *, workers, threads, on_result, on_start, **_):
    import multiprocessing

    n = workers or os.cpu_count() or 1
    # spawn: a fresh interpreter per worker (no forked BLAS thread state); leaving the block
    # terminates the workers, so Ctrl-C (or any error) stops the fits in flight at once.
    with multiprocessing.get_context("spawn").Pool(n, initializer=_local_init, initargs=(data,)) as pool:
        if on_start:
            on_start(len(tasks), f"{n} local worker process{'es' if n != 1 else ''}")
        jobs = [(i, combinations[i], f, threads) for i, f in tasks]
        for i, result in pool.imap_unordered(_local_fit, jobs):
            _collect(result, i, results, on_result)


class ClusterError(DeltapropError):
    """The Dask cluster could not run the fits: it lost the workers holding the data, a fit kept killing
    its worker, or the scheduler or workers cannot import deltaprop."""


_INSTALL_EVERYWHERE = ("install the same deltaprop (and NumPy) on the scheduler's machine and every worker's: "
                       "pip install 'deltaprop[scale]', then restart them")
_START_ONE = ("start one with `dask scheduler` and workers with `dask worker ADDRESS`, then pass the address it "
              "prints (tcp://HOST:8786)")


def check_scheduler(address: str, timeout: float = 10.0) -> dict:
    """The identity of the Dask scheduler at ``address`` (``{"type": "Scheduler", "workers": ...}``), asked
    with Dask's own protocol within ``timeout`` seconds; ConfigError when nothing listens there, the address
    is not one Dask can reach, or what answers is not a Dask scheduler (a web server, a worker: Dask's own
    client waits for ever on a server that accepts a connection and never answers its greeting)."""
    import asyncio

    try:
        from distributed.comm import connect
    except ImportError:
        raise ConfigError("--scheduler runs the fits on a Dask cluster, which needs the distributed package",
                          "pip install 'deltaprop[scale]'") from None

    async def identity():
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout + 1)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    try:
        reply = asyncio.run(identity())
    except ValueError as exc:  # distributed's words for a malformed address: no port, an unknown scheme
        raise ConfigError(f"--scheduler {address!r} is not an address of a Dask scheduler ({exc})",
                          "write tcp://HOST:PORT, the address `dask scheduler` prints (port 8786 by default)") from None
    except (asyncio.TimeoutError, TimeoutError):
        raise ConfigError(f"something at {address} accepts connections but does not answer as a Dask scheduler "
                          f"(no reply to Dask's greeting in {timeout:g} s)",
                          "check the host and port: pass the address `dask scheduler` prints (tcp://HOST:8786)") from None
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {address} ({exc})", _START_ONE) from None
    except Exception as exc:  # noqa: BLE001  bytes that are not Dask's protocol, whatever the reader made of them
        raise ConfigError(f"what answers at {address} is not a Dask scheduler (its reply could not be read: "
                          f"{type(exc).__name__})", "check the host and port: pass the address `dask scheduler` "
                          "prints (tcp://HOST:8786)") from None
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise ConfigError(f"{address} answers as a Dask {kind or 'peer'}, not a scheduler",
                          "pass the scheduler's address (the one every `dask worker` was given)")
    if reply.get("n_workers") == 0:
        raise ConfigError(f"the Dask scheduler at {address} has no workers", f"start some: dask worker {address}")
    return reply


def _cluster_error(exc: BaseException, scheduler: str) -> DeltapropError:
    """What the user can do about an exception the Dask cluster raised while running the fits."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    if "No module named 'deltaprop" in text:
        return ClusterError(f"the Dask scheduler or workers at {scheduler} cannot import deltaprop",
                            _INSTALL_EVERYWHERE, exit_code=2)
    first = str(exc).splitlines()[0] if str(exc) else ""
    if type(exc).__name__ in ("FutureCancelledError", "CancelledError", "KilledWorker") or "forgotten" in text:
        return ClusterError(f"the Dask cluster at {scheduler} lost fits it was running ({type(exc).__name__}: "
                            f"{first[:300]})", "its workers were stopped or died (the training rows are kept on "
                            "them): check the workers (`dask worker` logs, their memory), then search again")
    return ClusterError(f"the Dask cluster at {scheduler} failed to run a fit ({type(exc).__name__}: {first[:300]})",
                        "see the scheduler's and workers' logs")


def _run_dask(data, combinations, tasks, results, *, scheduler, threads, on_result, on_start, **_):
    check_scheduler(scheduler)
    from distributed import Client

    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc})", _START_ONE) from None
    futures = []
    stop = threading.Event()
    try:
        with _sigint_sets(stop):
            _submit_and_collect(client, data, combinations, tasks, results, futures, stop, scheduler=scheduler,
                                threads=threads, on_result=on_result, on_start=on_start)
    except BaseException as exc:
        with _sigint_sets(stop):  # a second Ctrl-C must not break the cancelling either
            client.cancel(futures)
        if isinstance(exc, (KeyboardInterrupt, DeltapropError)) or not isinstance(exc, Exception):
            raise
        raise _cluster_error(exc, scheduler) from None
    finally:
        with _sigint_sets(stop):
            client.close()


@contextlib.contextmanager
def _sigint_sets(stop: threading.Event):
    """Within the block, Ctrl-C sets ``stop`` instead of raising KeyboardInterrupt.

    distributed's blocking calls (``Future.result``, ``Client.cancel``) wait on its event-loop thread;
    a KeyboardInterrupt that lands inside one leaves that thread half-way and it logs a traceback.
    So the interrupt is turned into a flag, and the loop below raises it where nothing is waiting."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _submit_and_collect(client, data, combinations, tasks, results, futures, stop, *, scheduler, threads,
                        on_result, on_start):
    import importlib.util

    from distributed import as_completed

    n_workers = len(client.scheduler_info().get("workers", {}))
    if n_workers == 0:
        raise ConfigError(f"the Dask scheduler at {scheduler} has no workers", "start some: dask worker "
                          f"{scheduler}")
    # Every fit is deltaprop's function: the scheduler and each worker must import it (else the data and the
    # tasks cannot be unpickled there, and distributed reports it in its own words, deep in a traceback).
    where = {"the scheduler": client.run_on_scheduler(importlib.util.find_spec, "deltaprop")}
    where.update(client.run(importlib.util.find_spec, "deltaprop"))
    missing = [name for name, spec in where.items() if spec is None]
    if missing:
        raise ClusterError(f"deltaprop is not installed on {', '.join(missing)} of the Dask cluster at {scheduler}",
                           _INSTALL_EVERYWHERE, exit_code=2)
    shared = client.scatter(data, broadcast=True)
    keys = {}
    for i, f in tasks:
        fut = client.submit(fit_fold, shared, combinations[i], f, threads, pure=False)
        keys[fut.key] = i
        futures.append(fut)
    if on_start:
        on_start(len(tasks), f"the Dask cluster at {scheduler} ({n_workers} worker{'s' if n_workers != 1 else ''})")
    pending = as_completed(futures)
    while not pending.is_empty():
        if stop.is_set():
            raise KeyboardInterrupt
        batch = pending.next_batch(block=False)
        if not batch:
            stop.wait(0.1)
        for fut in batch:
            _collect(fut.result(), keys[fut.key], results, on_result)
    if stop.is_set():
        raise KeyboardInterrupt


def _collect(result, i, results, on_result):
    results[i][result["fold"]] = result
    if on_result:
        on_result(i, result)


# -- the table ------------------------------------------------------------------------------------
def _cell(value):
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return value


def result_rows(combinations: list[dict], results: list[list], names: list[str]) -> list[dict]:
    """One row per combination whose folds all finished, best first (NaN scores last): ``param_<name>``,
    ``mean_score``, ``std_score`` (over folds, ddof 0), ``score_fold1..k``, ``fit_seconds`` (mean over
    folds), ``worker`` (where its folds ran, ``;``-separated), ``rank``, ``error``, and ``combination``
    (its index in ``combinations``)."""
    rows = []
    for i, (combo, folds) in enumerate(zip(combinations, results)):
        if any(r is None for r in folds):
            continue
        scores = np.array([r["score"] for r in folds], dtype=np.float64)
        row = {"combination": i, **{f"param_{n}": _cell(combo.get(n)) for n in names}}
        row["mean_score"] = float(scores.mean())
        row["std_score"] = float(scores.std())
        for f, s in enumerate(scores, 1):
            row[f"score_fold{f}"] = float(s)
        row["fit_seconds"] = float(np.mean([r["seconds"] for r in folds]))
        row["worker"] = ";".join(dict.fromkeys(r["worker"] for r in folds))
        row["error"] = next((r["error"] for r in folds if r["error"]), "")
        rows.append(row)
    rows.sort(key=lambda r: (math.isnan(r["mean_score"]), -r["mean_score"] if not math.isnan(r["mean_score"]) else 0))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows
