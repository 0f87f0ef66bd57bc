"""``deltaprop search`` and the estimators under Dask: the search space, the folds, a local search, a
search on a real Dask cluster (a scheduler and two worker processes on 127.0.0.1), Ctrl-C, and
GridSearchCV / partial_fit / pickling of deltaprop's estimators through the cluster."""

from __future__ import annotations

import csv
import json
import pickle
import signal
import subprocess
import time

import numpy as np
import pytest

import cli_child
from cli_child import child_env, command
from deltaprop.errors import ConfigError, DataError
from deltaprop.scale.search import Range, Space, kfold, parse_option

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args, cwd=None, timeout=600):
    return cli_child.run(*args, cwd=cwd, timeout=timeout)



def test_search_takes_the_train_options_as_train_does():
    """A searched or fixed option means what `deltaprop train --NAME` means (the best combination is
    retrained by train): the same flag, type, default and choices, and a help text in search's --help."""
    import argparse

    from deltaprop.cli.main import build_parser
    from deltaprop.cli.search import _FLAGS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    actions = {cmd: {a.dest: a for a in sub.choices[cmd]._actions} for cmd in ("train", "search")}
    for name in _FLAGS:
        train, search = actions["train"][name], actions["search"][name]
        same = (search.type, search.default, search.choices) == (train.type, train.default, train.choices)
        assert same, name
        assert search.option_strings == train.option_strings
        assert search.help, f"--{name} has no help in deltaprop search"
    parsed = build_parser().parse_args(["search", "--grid", "lr=0.1", "--layers", "8,4", "--batch-size", "16"])
    assert parsed.layers == [8, 4] and parsed.batch_size == 16
    assert parsed.epochs == 30 and parsed.optimizer == "adam"


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def model_weights(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


# -- the space and the folds -------------------------------------------------------------------------
def test_grid_values_and_ranges_parse():
    assert parse_option("layers=32|64,32") == ("layers", [(32,), (64, 32)])
    assert parse_option("lr=0.01|0.001") == ("lr", [0.01, 0.001])
    assert parse_option("batch-size=32|64") == ("batch_size", [32, 64])
    assert parse_option("lr=1e-4..1e-1:log") == ("lr", Range(1e-4, 1e-1, True))
    grid = Space.parse(["layers=32|64,32", "lr=0.1|0.01"]).grid()
    assert grid == [{"layers": (32,), "lr": 0.1}, {"layers": (32,), "lr": 0.01},
                    {"layers": (64, 32), "lr": 0.1}, {"layers": (64, 32), "lr": 0.01}]


def test_random_draws_stay_in_range_and_repeat_with_the_seed():
    space = Space.parse(["lr=1e-4..1e-1:log", "epochs=5..50", "optimizer=sgd|adam"])
    draws = space.sample(40, seed=3)
    assert len(draws) == 40 and draws == space.sample(40, seed=3) and draws != space.sample(40, seed=4)
    lrs = np.array([d["lr"] for d in draws])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-1
    assert np.mean(lrs < 1e-2) > 0.4  # log-uniform: two of the three decades lie below 1e-2
    assert all(isinstance(d["epochs"], int) and 5 <= d["epochs"] <= 50 for d in draws)
    assert {d["optimizer"] for d in draws} == {"sgd", "adam"}


@pytest.mark.parametrize("spec, words", [
    ("lr", "NAME=V1|V2"), ("colour=red|blue", "choose among"), ("lr=fast", "not a finite number"),
    ("layers=32|0", "layer sizes"), ("lr=0.1|0.1", "twice"), ("activation=1..2", "listed values"),
    ("lr=1..0.1", "LOW < HIGH"),
])
def test_bad_search_options_say_what_to_write(spec, words):
    with pytest.raises(ConfigError, match=words.replace("|", r"\|")):
        parse_option(spec)


def test_a_grid_refuses_ranges():
    with pytest.raises(ConfigError, match="--random"):
        Space.parse(["lr=1e-4..1e-1:log"]).grid()


def test_kfold_deals_every_row_to_one_fold_per_class():
    y = np.repeat([0, 1, 2], [50, 31, 19])
    folds = kfold(y, 4, seed=0)
    held = np.concatenate([h for _, h in folds])
    assert np.array_equal(np.sort(held), np.arange(100))
    for train, h in folds:
        assert np.intersect1d(train, h).size == 0 and train.size + h.size == 100
        assert abs(h.size - 25) <= 1
        for c, n in ((0, 50), (1, 31), (2, 19)):
            assert abs(np.count_nonzero(y[h] == c) - n / 4) <= 1
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, kfold(y, 4, seed=0)))
    with pytest.raises(DataError):
        kfold(y[:3], 4)


def test_one_fit_scores_r2_for_numbers_and_nan_when_it_diverges():
    from deltaprop.scale.search import SearchData, fit_fold

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=300)
    data = SearchData(X, y, kfold(y, 3, seed=0, stratify=False), None)
    good = fit_fold(data, {"layers": (16,), "epochs": 40, "lr": 0.01}, 1)
    assert good["fold"] == 1 and good["error"] == "" and 0.9 < good["score"] <= 1
    held = data.folds[1][1]
    assert held.size == 100
    bad = fit_fold(data, {"layers": (16,), "epochs": 5, "optimizer": "sgd", "lr": 1e6}, 0)
    assert np.isnan(bad["score"]) and "diverged" in bad["error"]
    assert fit_fold(data, {"layers": (16,), "epochs": 40, "lr": 0.01}, 1)["score"] == good["score"]


# -- the command, locally ------------------------------------------------------------------------------
GRID = ["--grid", "layers=16|32", "--grid", "lr=0.01|0.001", "--cv", "3", "--epochs", "4", "--seed", "2"]


@pytest.fixture(scope="module")
def local_search(tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "local"
    proc = run("search", *GRID, "--workers", "2", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_local_search_writes_the_table_the_plot_and_the_best_model(local_search):
    out, proc = local_search
    rows = read_csv(out / "search.csv")
    assert len(rows) == 4
    assert list(rows[0]) == ["param_layers", "param_lr", "mean_score", "std_score", "score_fold1", "score_fold2",
                             "score_fold3", "fit_seconds", "worker", "rank", "error"]
    means = [float(r["mean_score"]) for r in rows]
    assert means == sorted(means, reverse=True) and [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    for r in rows:
        folds = [float(r[f"score_fold{f}"]) for f in (1, 2, 3)]
        assert float(r["mean_score"]) == pytest.approx(np.mean(folds), rel=1e-12)
        assert float(r["std_score"]) == pytest.approx(np.std(folds), rel=1e-9, abs=1e-15)
        assert all(0 <= s <= 1 for s in folds) and float(r["fit_seconds"]) > 0
    assert {(r["param_layers"], r["param_lr"]) for r in rows} == {("16", "0.01"), ("16", "0.001"), ("32", "0.01"),
                                                                  ("32", "0.001")}
    assert (out / "search.png").read_bytes()[:8] == PNG_MAGIC
    # the best combination, retrained on all the training rows by `deltaprop train`
    best = rows[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["layers"] == [int(best["param_layers"])]
    assert metrics["config"]["lr"] == float(best["param_lr"]) and metrics["config"]["val_fraction"] == 0
    from deltaprop.io.datasets import resolve

    assert metrics["data"]["train_rows"] == resolve("digits", seed=2).X_train.shape[0]  # all of them
    assert metrics["test"]["accuracy"] > 0.8
    weights = model_weights(out / "model.safetensors")
    assert any(w.shape == (int(best["param_layers"]), 64) for w in weights.values())
    assert "best: layers=" in proc.stdout and "deltaprop train --data digits" in proc.stdout


def test_search_refusals():
    for args, code, words in ((["--epochs", "1"], 2, "--grid"), (["--grid", "colour=red"], 2, "choose among"),
                              (["--grid", "lr=1e-3..1e-1"], 2, "--random")):
        proc = run("search", *args, "--no-retrain")
        assert proc.returncode == code and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def _interrupted_after_the_first_row(out, *args):
    """(the process, its stderr) of ``deltaprop search ARGS --out OUT --no-retrain`` sent Ctrl-C once its
    first combination is in OUT/search.csv."""
    proc = subprocess.Popen(command("search", *args, "--out", out, "--no-retrain"), env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (out / "search.csv").exists():
        time.sleep(0.2)
    assert (out / "search.csv").exists(), "no combination finished in time"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    return proc, stderr


def test_ctrl_c_keeps_the_finished_rows(tmp_path):
    out = tmp_path / "stopped"
    proc, stderr = _interrupted_after_the_first_row(
        out, "--grid", "lr=0.001|0.002|0.003|0.004|0.005|0.006|0.007|0.008", "--grid", "layers=32|64", "--cv", "2",
        "--epochs", "15", "--workers", "1")
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    rows = read_csv(out / "search.csv")
    assert 1 <= len(rows) < 16
    assert all(r["score_fold1"] and r["score_fold2"] for r in rows)
    assert not (out / "model.safetensors").exists()


# -- on a real Dask cluster ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as c:
        with distributed.Client(c) as client:
            client.wait_for_workers(2, timeout=120)
            yield c, client


@pytest.mark.slow
def test_search_on_the_cluster_equals_the_local_search(cluster, local_search, tmp_path):
    c, client = cluster
    workers = set(client.scheduler_info()["workers"])
    out = tmp_path / "cluster"
    proc = run("search", *GRID, "--scheduler", c.scheduler_address, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert f"the Dask cluster at {c.scheduler_address} (2 workers)" in proc.stderr
    rows = read_csv(out / "search.csv")
    used = {w for r in rows for w in r["worker"].split(";")}
    assert used <= workers and len(used) == 2, (used, workers)  # every fit ran on the cluster's two workers
    local = {(r["param_layers"], r["param_lr"]): r for r in read_csv(local_search[0] / "search.csv")}
    assert not any(w.startswith("tcp://") for r in local.values() for w in r["worker"].split(";"))
    for r in rows:
        same = local[(r["param_layers"], r["param_lr"])]
        for key in ("mean_score", "std_score", "score_fold1", "score_fold2", "score_fold3", "rank"):
            assert r[key] == same[key], key  # the same fits, bit for bit
    a, b = model_weights(out / "model.safetensors"), model_weights(local_search[0] / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ctrl_c_on_the_cluster_keeps_the_rows_and_cancels_the_rest(cluster, tmp_path):
    c, client = cluster
    out = tmp_path / "stopped"
    proc, stderr = _interrupted_after_the_first_row(
        out, "--grid", "lr=0.001|0.002|0.003|0.004|0.005|0.006|0.007|0.008", "--grid", "layers=32|64|128", "--cv",
        "2", "--epochs", "30", "--scheduler", c.scheduler_address)
    assert proc.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    rows = read_csv(out / "search.csv")
    assert 1 <= len(rows) < 24 and all(r["worker"].startswith("tcp://") for r in rows)
    deadline = time.monotonic() + 60  # the fits not done were cancelled: the workers fall idle
    while time.monotonic() < deadline and any(client.processing().values()):
        time.sleep(0.5)
    assert not any(client.processing().values())


@pytest.mark.slow
def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run("search", "--grid", "lr=0.1|0.01", "--scheduler", f"tcp://127.0.0.1:{port}", "--out", tmp_path / "x")
    assert proc.returncode == 2 and "cannot reach the Dask scheduler" in proc.stderr and "dask scheduler" in proc.stderr
    assert "Traceback" not in proc.stderr
    # no search ran: no empty run directory is left behind (one holding only .lock was)
    assert not (tmp_path / "x").exists()
    proc = run("search", "--grid", "lr=0.1|0.01", "--scheduler", f"tcp://127.0.0.1:{port}", cwd=tmp_path)
    assert proc.returncode == 2 and list((tmp_path / "runs").iterdir()) == []


def _digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.mark.slow
def test_gridsearchcv_with_the_dask_joblib_backend(cluster):
    import joblib
    from distributed import get_task_stream
    from sklearn.model_selection import GridSearchCV

    import deltaprop as dp

    c, client = cluster
    X, y = _digits()
    grid = {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-2]}

    def search():
        return GridSearchCV(dp.MLPClassifier(max_iter=15, random_state=0), grid, cv=3)

    with get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        on_cluster = search().fit(X, y)
    local = search().fit(X, y)
    assert np.array_equal(on_cluster.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    assert on_cluster.best_params_ == local.best_params_
    ran_on = {task["worker"] for task in stream.data}
    assert ran_on and ran_on <= set(client.scheduler_info()["workers"])


@pytest.mark.slow
def test_partial_fit_over_the_blocks_of_a_dask_array(cluster):
    import dask.array as da

    import deltaprop as dp

    X, y = _digits()
    dX, dy = da.from_array(X, chunks=(300, -1)), da.from_array(y, chunks=300)
    streamed = dp.MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    for _ in range(8):
        for i in range(dX.numblocks[0]):
            Xb, yb = dask_compute(dX.blocks[i], dy.blocks[i])
            streamed.partial_fit(Xb, yb, classes=np.arange(10))
    in_memory = dp.MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    for _ in range(8):
        for start in range(0, X.shape[0], 300):
            in_memory.partial_fit(X[start:start + 300], y[start:start + 300], classes=np.arange(10))
    assert all(np.array_equal(a, b) for a, b in zip(streamed.coefs_, in_memory.coefs_))
    assert streamed.score(X, y) > 0.8


def dask_compute(*arrays):
    import dask

    return dask.compute(*arrays)


def _fit_on_worker(X, y):
    import deltaprop as dp

    return dp.MLPClassifier(hidden_layer_sizes=(32,), max_iter=10, random_state=0).fit(X, y)


@pytest.mark.slow
def test_a_fitted_estimator_travels_without_its_training_data(cluster):
    c, client = cluster
    X, y = _digits()
    X = np.tile(X, (8, 1))  # 14,376 rows: 7 MB of float64
    y = np.tile(y, 8)
    data = client.scatter([X, y], broadcast=True)
    est = client.submit(_fit_on_worker, *data).result()  # fitted on a worker, pickled back
    size = len(pickle.dumps(est))
    assert size < X.nbytes / 50, size  # weights and settings, no rows
    here = _fit_on_worker(X, y)
    assert np.array_equal(est.predict(X), here.predict(X))
    remote = client.submit(lambda e, A: e.predict_proba(A), client.scatter(est), data[0]).result()
    assert np.array_equal(remote, here.predict_proba(X))
