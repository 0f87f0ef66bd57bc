"""``deltaprop search`` and the estimators under Dask: the search space, the folds, a local search, a
search on a real Dask cluster (a scheduler and two worker processes on 127.0.0.1), Ctrl-C, and
GridSearchCV / partial_fit / pickling of deltaprop's estimators through the cluster."""

from __future__ import annotations

import csv
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
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


def test_npy_data_is_retrained_as_the_fits_trained(tmp_path):
    """The fits hold .npy rows in memory and shuffle them row by row; the retraining read them from disk
    by blocks (--shuffle blocks, the scaling fitted in a streaming pass): another training than the one the
    search scored. It is now told --in-memory, and gives the weights `deltaprop train --in-memory` gives."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    data = tmp_path / "d"
    data.mkdir()
    np.save(data / "X.npy", X.astype(np.float32))
    np.save(data / "y.npy", y)
    out = tmp_path / "s"
    proc = run("search", "--data", data, "--grid", "lr=0.01", "--epochs", "2", "--layers", "8", "--cv", "2",
               "--batch-size", "32", "--workers", "1", "--no-plots", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "--in-memory" in proc.stdout
    same = tmp_path / "t"
    cli_child.run("train", "--data", data, "--in-memory", "--val-fraction", "0", "--epochs", "2", "--layers", "8",
                  "--batch-size", "32", "--lr", "0.01", "--no-plots", "-q", "--out", same, check=0)
    a, b = model_weights(out / "model.safetensors"), model_weights(same / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_random_beyond_a_small_space_says_so(tmp_path):
    proc = run("search", "--random", "20", "--grid", "lr=0.1|0.01", "--epochs", "1", "--layers", "4", "--cv", "2",
               "--workers", "1", "--no-retrain", "--no-plots", "--out", tmp_path / "s")
    assert proc.returncode == 0, proc.stderr
    assert "--random 20: the search space holds only 2 distinct combinations" in proc.stderr
    assert len(read_csv(tmp_path / "s" / "search.csv")) == 2


def test_random_values_are_shown_to_six_digits_and_kept_whole(tmp_path):
    """A random search's log-uniform lr reads 0.0146038 in the table and the 'best' line; search.csv and
    the retraining command keep every digit."""
    proc = run("search", "--random", "2", "--grid", "lr=1e-3..1e-1", "--epochs", "1", "--layers", "4", "--cv", "2",
               "--workers", "1", "--no-plots", "--out", tmp_path / "s")
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(tmp_path / "s" / "search.csv")
    for value in (float(r["param_lr"]) for r in rows):
        assert len(repr(value)) > 12  # a random float: many digits
        assert f"{value:.6g}" in proc.stdout and repr(value) not in proc.stdout.split("deltaprop train")[0]
    best = float(rows[0]["param_lr"])
    assert f"best: lr={best:.6g} (" in proc.stdout and f"--lr {best!r}" in proc.stdout


def test_search_refusals():
    for args, code, words in ((["--epochs", "1"], 2, "--grid"), (["--grid", "colour=red"], 2, "choose among"),
                              (["--grid", "lr=1e-3..1e-1"], 2, "--random")):
        proc = run("search", *args, "--no-retrain")
        assert proc.returncode == code and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("grid, words", [
    ("seed=-1|2", "seed must be a whole number"), ("activation=relu|bogus", "unknown activation"),
    ("lr=-1|0.1", "lr must be"), ("epochs=0|2", "epochs must be"), ("momentum=0.5|2", "momentum must be below 1"),
    ("schedule=constant|bogus", "unknown learning-rate schedule"), ("dtype=float32|float16", "dtype"),
])
def test_a_value_no_fit_can_train_with_is_refused_before_any_fit(tmp_path, grid, words):
    """A searched value that cannot train (seed=-1 was a traceback from a worker; a bad activation ended the
    search half-way; a negative lr filled a column with NaN after every fit ran) is a usage error that
    names the combination, before the run directory is made."""
    out = tmp_path / "s"
    proc = run("search", "--grid", grid, "--grid", "optimizer=sgd", "--epochs", "1", "--layers", "4", "--workers",
               "1", "--no-retrain", "--out", out)
    cli_child.assert_clean_error(proc, 2, words, "the combination " + grid.split("=")[0] + "=")
    assert "fits on" not in proc.stderr and not out.exists()


def test_check_combinations_names_the_combination():
    from deltaprop.scale.search import SearchData, check_combinations

    y = np.arange(30) % 3
    data = SearchData(np.zeros((30, 2)), y, kfold(y, 3), ["a", "b", "c"])
    check_combinations(data, [{"layers": (4,), "optimizer": "momentum", "momentum": 0.5}])
    with pytest.raises(ConfigError, match="optimizer=adam, momentum=0.5 cannot train: momentum is for"):
        check_combinations(data, [{"layers": (4,), "optimizer": "adam", "momentum": 0.5}], ["optimizer", "momentum"])


def test_a_momentum_adam_does_not_use_is_left_out_and_the_best_retrains(tmp_path):
    """--momentum held fixed while Adam is searched: Adam's combinations train without it (said in a note),
    the combinations that differed only in it train once, and the best (Adam) is retrained; the retraining
    used to be refused by `deltaprop train` (--momentum with Adam) after the whole search."""
    out = tmp_path / "s"
    proc = run("search", "--grid", "optimizer=adam", "--grid", "momentum=0.5|0.9", "--epochs", "1", "--layers", "8",
               "--workers", "1", "--cv", "2", "--no-plots", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "adam does not use a momentum" in proc.stderr and "trained once" in proc.stderr
    rows = read_csv(out / "search.csv")
    assert [(r["param_optimizer"], r["param_momentum"]) for r in rows] == [("adam", "")]
    assert "--momentum" not in proc.stdout and (out / "model.safetensors").is_file()


def test_a_searched_seed_keeps_the_search_s_test_rows_in_the_retraining(tmp_path):
    """--grid 'seed=...': the best seed is retrained with its weights, on the training rows the search split
    off with --seed; the retraining split the data again with the best seed before (another test split,
    holding rows the search had scored on)."""
    from deltaprop.io.datasets import resolve

    out = tmp_path / "s"
    proc = run("search", "--grid", "seed=5|6", "--seed", "2", "--epochs", "1", "--layers", "8", "--cv", "2",
               "--workers", "1", "--no-plots", "--out", out)
    assert proc.returncode == 0, proc.stderr
    best = int(read_csv(out / "search.csv")[0]["param_seed"])
    assert f"--seed {best} --split-seed 2" in proc.stdout
    net = dp_load(out / "model.safetensors")
    assert net.meta["data"]["seed"] == 2  # what evaluate splits the data with again
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["seed"] == best and metrics["config"]["split_seed"] == 2
    assert metrics["data"]["train_rows"] == resolve("digits", seed=2).X_train.shape[0]
    evaluated = run("evaluate", out / "model.safetensors")
    assert evaluated.returncode == 0 and f"accuracy {metrics['test']['accuracy']:.4f}" in evaluated.stdout


def dp_load(path):
    import deltaprop as dp

    return dp.load(path)


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
    assert f"continue with: deltaprop search --resume {out}" in stderr


def test_ctrl_c_then_resume_fits_only_what_is_missing(tmp_path):
    """Ctrl-C kept the rows done, but nothing could continue the search (the same --out was refused, and
    --overwrite threw the rows away). search --resume DIR fits the rest with the stored options, from any
    directory: the rows done stay as they were, the new ones are the fits a search gives them."""
    from deltaprop.io.datasets import resolve
    from deltaprop.scale.search import SearchData, fit_fold

    out = tmp_path / "stopped"
    grid = ["--grid", "lr=0.001|0.002|0.003|0.004|0.005|0.006", "--grid", "layers=16|32", "--cv", "2",
            "--epochs", "12", "--seed", "3"]
    proc, stderr = _interrupted_after_the_first_row(out, *grid, "--workers", "1")
    assert proc.returncode == 130, stderr
    before = {(r["param_lr"], r["param_layers"]): r for r in read_csv(out / "search.csv")}
    assert 1 <= len(before) < 12
    record = json.loads((out / "search.json").read_text())
    done = sum(r is not None for folds in record["results"] for r in folds)
    refused = run("search", "--resume", out, "--epochs", "3")
    cli_child.assert_clean_error(refused, 2, "cannot change --epochs")
    resumed = run("search", "--resume", out, "--workers", "2", "--no-retrain", cwd=tmp_path.parent)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {done} of 24 fits were done" in resumed.stderr and f"{24 - done} fits in" in resumed.stdout
    rows = read_csv(out / "search.csv")
    assert len(rows) == 12 and [r["rank"] for r in rows] == [str(i) for i in range(1, 13)]
    for r in rows:
        if (r["param_lr"], r["param_layers"]) in before:
            assert r == {**before[(r["param_lr"], r["param_layers"])], "rank": r["rank"]}
    data = resolve("digits", seed=3)
    shared = SearchData(data.X_train, data.y_train, kfold(data.y_train, 2, seed=3), data.class_names, data.scaling)
    new = next(r for r in rows if (r["param_lr"], r["param_layers"]) not in before)
    options = {"lr": float(new["param_lr"]), "layers": (int(new["param_layers"]),), "epochs": 12, "seed": 3}
    assert [repr(fit_fold(shared, options, f)["score"]) for f in (0, 1)] == [new["score_fold1"], new["score_fold2"]]
    # Every fit done: nothing runs again (the search was started with --no-retrain, which it keeps).
    finished = run("search", "--resume", out, "--no-plots")
    assert finished.returncode == 0 and "0 fits in" in finished.stdout, finished.stderr
    assert read_csv(out / "search.csv") == rows and not (out / "model.safetensors").exists()


def test_resume_refuses_a_changed_data_file_and_a_damaged_record(tmp_path):
    rng = np.random.default_rng(0)
    table = tmp_path / "t.csv"
    X = rng.normal(size=(60, 3))
    lines = ["a,b,c,label"] + [f"{a:.6f},{b:.6f},{c:.6f},{int(a + b > 0)}" for a, b, c in X]
    table.write_text("\n".join(lines) + "\n")
    out = tmp_path / "s"
    proc = run("search", "--data", table, "--target", "label", "--grid", "lr=0.01|0.1", "--epochs", "2",
               "--layers", "4", "--cv", "2", "--workers", "1", "--no-plots", "--out", out)
    assert proc.returncode == 0 and (out / "model.safetensors").is_file(), proc.stderr
    again = run("search", "--data", table, "--target", "label", "--grid", "lr=0.01", "--out", out)
    cli_child.assert_clean_error(again, 2, "already holds a search", f"deltaprop search --resume {out}")
    done = run("search", "--resume", out)
    cli_child.assert_clean_error(done, 2, "is done", f"deltaprop train --resume {out}")
    (out / "model.safetensors").unlink()
    table.write_text("\n".join(lines[:-1]) + "\n")
    changed = run("search", "--resume", out)
    cli_child.assert_clean_error(changed, 2, "changed since the search started")
    (out / "run.json").unlink()
    (out / "search.json").write_text('{"format": "deltaprop-search", "argv": []')
    damaged = run("search", "--resume", out)
    cli_child.assert_clean_error(damaged, 3, "search.json is damaged")
    assert not (out / "model.safetensors").exists()


@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0), reason="mounting a small tmpfs needs root")
def test_a_full_disk_after_the_fits_costs_neither_the_table_nor_the_fits(tmp_path):
    """A disk with room for search.csv but not the plot: the plot's failure stopped the search before its
    table was printed, and nothing said how to go on. Now the table is printed, the failure named, the
    retraining refused for want of room says that --resume retrains the best once there is room; moved to
    a disk with room, the directory resumes and retrains."""
    import shutil

    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("mount is not permitted here")
    try:
        out = small / "s"
        proc = run("search", "--grid", "lr=0.01|0.1", "--grid", "layers=4|8", "--epochs", "1", "--cv", "2",
                   "--workers", "1", "--out", out)
        cli_child.assert_clean_error(proc, 2, "search.png", "no space left", "need",
                                     f"deltaprop search --resume {out} retrains its best")
        assert "rank  lr" in proc.stdout and "best: " in proc.stdout
        assert len(read_csv(out / "search.csv")) == 4
        moved = tmp_path / "moved"
        shutil.copytree(out, moved)
    finally:
        subprocess.run(["umount", str(small)], check=False)
    resumed = run("search", "--resume", moved, "--no-plots")
    assert resumed.returncode == 0 and "0 fits in" in resumed.stdout, resumed.stderr
    assert (moved / "model.safetensors").is_file()


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
    assert proc.returncode == 2 and not any((tmp_path / "runs").glob("*"))  # the address is tried before


@pytest.mark.parametrize("address, words", [("http://127.0.0.1:80", "unknown address scheme"),
                                            ("127.0.0.1", "missing port")])
def test_a_malformed_scheduler_address_is_a_usage_error(tmp_path, address, words):
    pytest.importorskip("distributed")
    out = tmp_path / "x"
    proc = run("search", "--grid", "lr=0.1|0.01", "--scheduler", address, "--out", out)
    cli_child.assert_clean_error(proc, 2, "is not an address of a Dask scheduler", words, "tcp://HOST:PORT")
    assert not out.exists()


@pytest.mark.slow
def test_a_server_that_is_not_a_dask_scheduler_is_named_not_waited_for(tmp_path):
    """A port where something accepts connections and never answers (a web server waiting for its request):
    distributed's Client waited there for ever; the search says what it found within seconds."""
    pytest.importorskip("distributed")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []

    def accept():
        try:
            while True:
                accepted.append(server.accept()[0])  # holds the connection open, says nothing
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        out = tmp_path / "x"
        started = time.monotonic()
        proc = run("search", "--grid", "lr=0.1|0.01", "--scheduler", f"tcp://127.0.0.1:{server.getsockname()[1]}",
                   "--out", out, timeout=120)
        cli_child.assert_clean_error(proc, 2, "does not answer as a Dask scheduler")
        assert time.monotonic() - started < 60 and accepted and not out.exists()
    finally:
        server.close()
        for conn in accepted:
            conn.close()


class _Cluster:
    """A Dask scheduler and worker processes started as a person starts them (`dask scheduler`, `dask
    worker`), so that a test may kill workers; ``preload`` (a Python file) runs in each worker first."""

    def __init__(self, tmp_path, n_workers=2, preload=None):
        self.dir, self.procs = tmp_path, []
        self.file = tmp_path / "scheduler.json"
        dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
        self.scheduler = self._start(*dask, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                     "--scheduler-file", self.file)
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = [self._start(sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nthreads",
                                    "1", "--no-nanny", "--no-dashboard", *(["--preload", preload] if preload else []))
                        for _ in range(n_workers)]
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n_workers, timeout=60)

    def _start(self, *argv):
        log = open(self.dir / f"dask-{len(self.procs)}.log", "w")
        proc = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT, env=child_env())
        log.close()
        self.procs.append(proc)
        return proc

    def close(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


@pytest.fixture
def own_cluster(tmp_path):
    pytest.importorskip("distributed")
    clusters = []

    def start(**kwargs):
        clusters.append(_Cluster(tmp_path, **kwargs))
        return clusters[-1]

    yield start
    for c in clusters:
        c.close()


@pytest.mark.slow
def test_workers_that_cannot_import_deltaprop_are_named(own_cluster, tmp_path):
    """Workers started where deltaprop is not installed: a traceback from distributed's unpickling
    ('No module named deltaprop') before; now exit 2 naming the workers and the pip command."""
    block = tmp_path / "no_deltaprop.py"
    block.write_text("import sys\nsys.modules['deltaprop'] = None  # as if it were not installed\n")
    c = own_cluster(n_workers=1, preload=block)
    out = tmp_path / "x"
    proc = run("search", "--grid", "lr=0.1|0.01", "--epochs", "1", "--scheduler", c.address, "--out", out)
    cli_child.assert_clean_error(proc, 2, "deltaprop is not installed on tcp://", "pip install 'deltaprop[scale]'")
    assert not out.exists()


def _kill_workers_after_the_first_row(c, out, *workers):
    proc = subprocess.Popen(command("search", "--grid", "lr=0.001|0.002|0.003|0.004|0.005|0.006", "--grid",
                                    "layers=32|64", "--cv", "2", "--epochs", "40", "--scheduler", c.address, "--out",
                                    out, "--no-retrain", "--no-plots"),
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (out / "search.csv").exists():
        time.sleep(0.1)
    assert (out / "search.csv").exists(), "no combination finished in time"
    for w in workers:
        w.kill()
    stdout, stderr = proc.communicate(timeout=300)
    return proc.returncode, stderr


@pytest.mark.slow
def test_a_worker_killed_mid_search_changes_no_score(own_cluster, tmp_path):
    """kill -9 of one of two workers mid-search: Dask runs its fits again on the other, and every score is
    the one a local search gives."""
    c = own_cluster(n_workers=2)
    out = tmp_path / "cluster"
    code, stderr = _kill_workers_after_the_first_row(c, out, c.workers[0])
    assert code == 0 and "Traceback" not in stderr, stderr
    local = tmp_path / "local"
    cli_child.run("search", "--grid", "lr=0.001|0.002|0.003|0.004|0.005|0.006", "--grid", "layers=32|64", "--cv", "2",
                  "--epochs", "40", "--workers", "2", "--out", local, "--no-retrain", "--no-plots", check=0)
    keys = ("param_lr", "param_layers", "mean_score", "std_score", "score_fold1", "score_fold2", "rank")
    assert [[r[k] for k in keys] for r in read_csv(out / "search.csv")] == \
        [[r[k] for k in keys] for r in read_csv(local / "search.csv")]


@pytest.mark.slow
def test_every_worker_killed_mid_search_keeps_the_rows_done(own_cluster, tmp_path):
    """kill -9 of every worker mid-search (the training rows lived on them): a traceback of distributed's
    FutureCancelledError before; now exit 1 saying the cluster lost its fits, the rows done kept."""
    c = own_cluster(n_workers=2)
    out = tmp_path / "cluster"
    code, stderr = _kill_workers_after_the_first_row(c, out, *c.workers)
    assert code == 1 and "Traceback" not in stderr, stderr
    assert "lost fits it was running" in stderr and "kept in" in stderr
    rows = read_csv(out / "search.csv")
    assert 1 <= len(rows) < 12 and all(r["score_fold1"] and r["score_fold2"] for r in rows)


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
