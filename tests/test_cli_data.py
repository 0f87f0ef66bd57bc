"""The command on data as people have it: CSVs written from scikit-learn's bundled iris, wine, breast
cancer and diabetes with pandas' defaults (an unnamed index column included), run through the real
command (``python -m deltaprop``)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
datasets = pytest.importorskip("sklearn.datasets")

import deltaprop as dp  # noqa: E402
from cli_child import run  # noqa: E402
from deltaprop.io.datasets import read_csv, split  # noqa: E402
from deltaprop.io.preprocessing import Scaler  # noqa: E402


def frame(name: str):
    if name == "diabetes":  # the raw disease progression, whole numbers 25..346
        return datasets.load_diabetes(as_frame=True, scaled=False).frame.rename(
            columns={"target": "progression"}
        )
    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    df = bunch.frame
    if name == "iris":
        df = df.assign(target=[bunch.target_names[t] for t in bunch.target]).rename(
            columns={"target": "species"}
        )
    return df


@pytest.fixture(scope="module")
def csvs(tmp_path_factory):
    """Each data set written with pandas' defaults, ``df.to_csv(path)``: with the index column."""
    d = tmp_path_factory.mktemp("data")
    paths = {}
    for name in ("iris", "wine", "breast_cancer", "diabetes"):
        paths[name] = d / f"{name}.csv"
        frame(name).to_csv(paths[name])
    return paths


@pytest.fixture(scope="module")
def iris_run(csvs, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "iris"
    proc = run(
        "train",
        "--data",
        csvs["iris"],
        "--target",
        "species",
        "--epochs",
        "100",
        "--lr",
        "0.01",
        "--layers",
        "16",
        "--out",
        out,
        "--no-plots",
        check=0,
    )
    return out, proc


# -- the task --------------------------------------------------------------------------------------
def test_diabetes_asks_for_the_task(csvs, tmp_path):
    proc = run("train", "--data", csvs["diabetes"], "--target", "progression", "--out", tmp_path / "r")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'progression' holds 214 distinct whole numbers in 442 rows" in proc.stderr
    assert "--task regression" in proc.stderr and "--task classification" in proc.stderr
    assert not (tmp_path / "r" / "model.safetensors").exists()


def test_diabetes_regression_with_defaults_against_scikit_learn(csvs, tmp_path):
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor

    out = tmp_path / "run"
    proc = run(
        "train",
        "--data",
        csvs["diabetes"],
        "--target",
        "progression",
        "--task",
        "regression",
        "--out",
        out,
        check=0,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert {"mse", "rmse", "mae", "r2", "loss"} <= set(test)
    assert np.isclose(test["rmse"], np.sqrt(test["mse"]))
    for word in ("MSE", "RMSE", "MAE", "R²", "½·MSE of the standardised target"):
        assert word in proc.stdout, word
    assert "residuals.png" in metrics["files"] and (out / "residuals.png").stat().st_size > 10000
    net = dp.load(out / "model.safetensors")
    assert net.meta["target_scaling"]["mean"][0] > 100  # trained on standardised targets, predicts raw ones

    # scikit-learn's MLPRegressor with its defaults on the same split and the same standardised inputs.
    table = read_csv(csvs["diabetes"], target="progression")
    X_train, y_train, X_test, y_test = split(table.X, table.y, 0.3, seed=0, stratify=False)
    assert X_test.shape[0] == metrics["data"]["test_rows"]
    scaler = Scaler.from_spec("standard").fit(X_train)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its ConvergenceWarning: defaults are defaults
        sk = MLPRegressor(random_state=0).fit(scaler.transform(X_train), y_train)
    sk_r2 = r2_score(y_test, sk.predict(scaler.transform(X_test)))
    print(f"\ndiabetes R²: deltaprop {test['r2']:.4f}, scikit-learn MLPRegressor {sk_r2:.4f}")
    assert test["r2"] >= sk_r2 - 0.05
    # The predictions are named after the target, in its units.
    inputs = tmp_path / "inputs.csv"
    frame("diabetes").drop(columns=["progression"]).to_csv(inputs, index=False)
    pred = run("predict", out / "model.safetensors", inputs, check=0)
    rows = list(csv.reader(pred.stdout.splitlines()))
    assert rows[0] == ["progression"] and len(rows) == 443
    assert 25 <= np.mean([float(r[0]) for r in rows[1:]]) <= 346


# -- columns by name ---------------------------------------------------------------------------------
def test_the_pandas_index_column_is_dropped_and_announced(csvs, iris_run):
    out, proc = iris_run
    assert "first column has no name and holds the row numbers 0..149" in proc.stderr
    net = dp.load(out / "model.safetensors")
    assert net.sizes[0] == 4 and "" not in net.meta["feature_names"]


def test_wine_sorted_by_class_does_not_leak_through_its_index(csvs, tmp_path):
    out = tmp_path / "wine"
    proc = run("train", "--data", csvs["wine"], "--out", out, "--no-plots", "-q", check=0)
    assert "row numbers 0..177" in proc.stderr
    assert "'target' holds 3 distinct whole numbers: taken as 3 classes" in proc.stderr  # the guess, said
    assert dp.load(out / "model.safetensors").sizes[0] == 13


def test_predict_matches_columns_by_name(csvs, iris_run, tmp_path):
    out, _ = iris_run
    model = out / "model.safetensors"
    df = pd.read_csv(csvs["iris"], index_col=0)
    df.drop(columns=["species"]).to_csv(tmp_path / "x.csv", index=False)
    df[df.columns[::-1]].to_csv(tmp_path / "reversed.csv", index=False)  # label column included, first
    base = run("predict", model, tmp_path / "x.csv", check=0).stdout
    reordered = run("predict", model, tmp_path / "reversed.csv", check=0)
    assert reordered.stdout == base
    assert "'species' is the model's target: left out" in reordered.stderr
    assert "matched to the model's by name" in reordered.stderr
    with_label = run("predict", model, csvs["iris"], check=0)  # pandas' file itself: index and label
    assert with_label.stdout == base
    accuracy = np.mean([row[0] for row in csv.reader(base.splitlines()[1:])] == df["species"].to_numpy())
    assert accuracy > 0.9
    df.drop(columns=["species", "petal width (cm)"]).to_csv(tmp_path / "missing.csv", index=False)
    missing = run("predict", model, tmp_path / "missing.csv")
    assert missing.returncode == 2 and "lacks the column(s) 'petal width (cm)'" in missing.stderr
    df.assign(extra=1.0).drop(columns=["species"]).to_csv(tmp_path / "extra.csv", index=False)
    extra = run("predict", model, tmp_path / "extra.csv")
    assert extra.returncode == 2 and "'extra'" in extra.stderr and "--drop" in extra.stderr
    assert run("predict", model, tmp_path / "extra.csv", "--drop", "extra", check=0).stdout == base


def test_semicolons_are_detected_and_columns_dropped(csvs, tmp_path):
    df = pd.read_csv(csvs["iris"], index_col=0).assign(id=np.arange(150) * 7 % 150)
    df.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    out = tmp_path / "run"
    proc = run(
        "train",
        "--data",
        tmp_path / "semi.csv",
        "--target",
        "species",
        "--drop",
        "id",
        "--epochs",
        "2",
        "--out",
        out,
        "--no-plots",
        "-q",
        check=0,
    )
    assert "separated by a semicolon" in proc.stderr
    assert dp.load(out / "model.safetensors").meta["feature_names"] == list(df.columns[:4])
    forced = run(
        "train", "--data", tmp_path / "semi.csv", "--delimiter", "comma", "--out", tmp_path / "r2", "-q"
    )
    assert forced.returncode == 2 and "delimiter" in forced.stderr


# -- evaluate ----------------------------------------------------------------------------------------
def test_evaluate_from_elsewhere_whole_files_and_a_changed_file(csvs, tmp_path):
    data = tmp_path / "iris.csv"
    data.write_bytes(csvs["iris"].read_bytes())
    out = tmp_path / "run"
    run(
        "train",
        "--data",
        "iris.csv",
        "--target",
        "species",
        "--epochs",
        "5",
        "--out",
        "run",
        "--no-plots",
        "-q",
        cwd=tmp_path,
        check=0,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    own = json.loads(run("evaluate", out / "model.safetensors", "--json", cwd=elsewhere, check=0).stdout)
    assert own["split"] == "test" and own["rows"] == 45 and own["data"]["path"] == str(data.resolve())
    new = tmp_path / "new.csv"
    pd.read_csv(data, index_col=0).sample(10, random_state=1).to_csv(new, index=False)
    whole = json.loads(run("evaluate", out / "model.safetensors", "--data", new, "--json", check=0).stdout)
    assert whole["split"] == "all" and whole["rows"] == 10
    with open(data, "a") as f:
        f.write("150,5.0,3.0,1.5,0.2,setosa\n")
    changed = run("evaluate", out / "model.safetensors", cwd=elsewhere)
    assert changed.returncode == 2 and "has changed since training" in changed.stderr
    assert f"--data {data.resolve()}" in changed.stderr


def test_a_closed_pipe_ends_quietly(csvs, iris_run, tmp_path):
    out, _ = iris_run
    big = tmp_path / "big.csv"
    pd.concat([pd.read_csv(csvs["iris"], index_col=0)] * 200).drop(columns=["species"]).to_csv(
        big, index=False
    )
    command = (
        f"set -o pipefail; {sys.executable} -m deltaprop predict {out / 'model.safetensors'} {big} "
        "| head -n 2; "
        f"{sys.executable} -m deltaprop evaluate {out / 'model.safetensors'} --json | head -n 1"
    )
    proc = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, MPLBACKEND="Agg"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "Broken pipe" not in proc.stderr and "Traceback" not in proc.stderr and "error" not in proc.stderr
    assert proc.stdout.splitlines()[0].startswith("label,p_setosa")


# -- two classes, class weights ------------------------------------------------------------------------
def test_binary_metrics_equal_scikit_learns(csvs, tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    out = tmp_path / "bc"
    run("train", "--data", csvs["breast_cancer"], "--epochs", "10", "--out", out, "-q", check=0)
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert metrics["threshold"] == 0.5 and "weighted_precision" in metrics and "weighted_recall" in metrics
    net = dp.load(out / "model.safetensors")
    table = read_csv(csvs["breast_cancer"], target="target", drop=[0])
    _, _, X_test, y_test = split(table.X, table.y.astype(int), 0.3, seed=0)
    scaler = Scaler.from_dict(net.meta["scaler"])
    P = net.predict_proba(scaler.transform(X_test, dtype=net.dtype))
    assert np.isclose(metrics["roc_auc"], roc_auc_score(y_test, P[:, 1]), rtol=0, atol=1e-12)
    assert np.isclose(
        metrics["average_precision"], average_precision_score(y_test, P[:, 1]), rtol=0, atol=1e-12
    )
    assert (out / "roc.png").stat().st_size > 10000
    text = run("evaluate", out / "model.safetensors", check=0).stdout
    assert "ROC-AUC" in text and "weighted avg" in text


def test_class_weight_balanced_raises_minority_recall(csvs, tmp_path):
    # An imbalanced subset of breast cancer: every benign row (357), the first 25 malignant ones.
    df = pd.read_csv(csvs["breast_cancer"], index_col=0)
    sub = pd.concat([df[df.target == 1], df[df.target == 0].head(25)])[
        ["mean radius", "mean texture", "target"]
    ]
    sub.to_csv(tmp_path / "imbalanced.csv", index=False)
    recalls = {}
    for cw in ("none", "balanced"):
        out = tmp_path / cw
        extra = [] if cw == "none" else ["--class-weight", "balanced"]
        run(
            "train",
            "--data",
            tmp_path / "imbalanced.csv",
            "--epochs",
            "30",
            "--lr",
            "0.01",
            "--layers",
            "8",
            "--out",
            out,
            "--no-plots",
            "-q",
            *extra,
            check=0,
        )
        metrics = json.loads((out / "metrics.json").read_text())
        recalls[cw] = metrics["test"]["per_class"]["0"]["recall"]
        assert metrics["config"]["class_weight"] == (None if cw == "none" else "balanced")
    print(f"\nminority recall: {recalls}")
    assert recalls["balanced"] > recalls["none"] + 0.1
    info = dp.load(tmp_path / "balanced" / "model.safetensors").meta["training"]
    assert info["class_weight"] == "balanced"


def test_help_states_each_default_once():
    from deltaprop.cli.args import Formatter
    from deltaprop.cli.main import build_parser

    parser = build_parser()
    subs = parser._subparsers._group_actions[0].choices
    formatter = Formatter("deltaprop")
    for name, sub in subs.items():
        for action in sub._actions:
            help_text = formatter._get_help_string(action) or ""
            assert help_text.count("(default:") + help_text.count("; default:") <= 1, (
                name,
                action.dest,
                help_text,
            )
            assert "(default: None)" not in help_text
    train = {a.dest: a for a in subs["train"]._actions}
    assert train["epochs"].help and train["dtype"].help
    assert "LATEST" not in parser.format_help()


def test_runs_latest_points_at_the_newest_run(tmp_path):
    for _ in range(2):
        run("train", "--epochs", "1", "--layers", "8", "--no-plots", "-q", cwd=tmp_path, check=0)
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.name != "latest")
    latest = tmp_path / "runs" / "latest"
    assert len(runs) == 2 and latest.is_symlink() and latest.resolve() == runs[-1].resolve()
    proc = run("evaluate", "runs/latest/model.safetensors", "--json", cwd=tmp_path, check=0)
    assert json.loads(proc.stdout)["rows"] > 0
    missing = run("evaluate", "runs/nope/model.safetensors", cwd=tmp_path)
    assert missing.returncode == 3 and "runs/latest/model.safetensors" in missing.stderr
    assert "--save" not in missing.stderr


def test_train_says_when_the_run_ended_still_learning(csvs, tmp_path):
    # iris at the default 30 epochs: the validation accuracy is 1.0 on its 12 rows, yet the training loss
    # still falls steadily (11 % in the last 6 epochs, still 17 % of ln 3) and the test accuracy is 0.80.
    # The end of `deltaprop train` says so, with the flag to try, and `deltaprop diagnose` agrees.
    line = "underfitting (the network can still learn): train longer (--epochs 60)"
    short = run("train", "--data", csvs["iris"], "--target", "species", "--out", tmp_path / "short",
                "--no-plots", check=0)
    assert line in short.stdout, short.stdout
    diagnosis = json.loads(run("diagnose", tmp_path / "short", "--format", "json", check=0).stdout)
    (finding,) = [f for f in diagnosis["findings"] if f["code"] == "underfitting"]
    assert "still falling at the last epoch" in finding["evidence"] and "--epochs 60" in finding["suggestion"]
    # Healthy runs get no such line: iris trained long enough, the digits at the defaults.
    for name, data in (("long", ("--data", csvs["iris"], "--target", "species", "--epochs", "200")),
                       ("digits", ("--data", "digits"))):
        proc = run("train", *data, "--out", tmp_path / name, "--no-plots", check=0)
        assert "underfitting" not in proc.stdout and "test accuracy" in proc.stdout, proc.stdout
        assert json.loads((tmp_path / name / "metrics.json").read_text())["test"]["accuracy"] > 0.9


def test_a_file_without_a_header_is_said_to_be_taken_in_the_models_order(csvs, iris_run, tmp_path):
    # Nothing can match a headerless file's columns to the model's by name: predict takes them in the
    # model's order, and says so (a file saved with its columns reversed would be read wrongly, quietly).
    out, _ = iris_run
    df = pd.read_csv(csvs["iris"], index_col=0).drop(columns=["species"])
    df.to_csv(tmp_path / "named.csv", index=False)
    df.to_csv(tmp_path / "bare.csv", index=False, header=False)
    named = run("predict", out / "model.safetensors", tmp_path / "named.csv", check=0)
    bare = run("predict", out / "model.safetensors", tmp_path / "bare.csv", check=0)
    assert bare.stdout == named.stdout and "no header row" not in named.stderr
    said = "bare.csv has no header row: its columns are taken in the order of the model's ('sepal length"
    assert said in bare.stderr, bare.stderr
    # evaluate takes such a file the same way, and says it, instead of refusing columns '0', '1', ...
    pd.read_csv(csvs["iris"], index_col=0).to_csv(tmp_path / "labelled.csv", index=False, header=False)
    scored = run("evaluate", out / "model.safetensors", "--data", tmp_path / "labelled.csv", "--target", "4",
                 "--json", check=0)
    assert "labelled.csv has no header row: its columns are taken in the order" in scored.stderr, scored.stderr
    assert json.loads(scored.stdout)["accuracy"] > 0.9


def test_a_target_that_is_the_pandas_index_column_is_told_apart_from_drop(csvs, tmp_path):
    # --target 0 on pandas' file names its unnamed index column: the error says that, and lists the columns,
    # instead of "also left out; drop other columns" (nothing was dropped by the user).
    proc = run("train", "--data", csvs["iris"], "--target", "0", "--out", tmp_path / "r", "-q")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the target column 0 is the unnamed first column" in proc.stderr, proc.stderr
    assert "--target NAME" in proc.stderr and "5: 'species'" in proc.stderr
    assert "drop other" not in proc.stderr
    both = run("train", "--data", csvs["iris"], "--target", "species", "--drop", "species",
               "--out", tmp_path / "s")
    assert both.returncode == 2 and "'species' is also left out (--drop)" in both.stderr, both.stderr


def test_numbers_with_a_decimal_comma_are_named_as_such(csvs, tmp_path):
    # A semicolon file from a spreadsheet set to a comma-decimal locale (pandas: decimal=","): the error says
    # what the cell is and how to convert the file, instead of "encode text columns as numbers".
    df = pd.read_csv(csvs["iris"], index_col=0)
    df.to_csv(tmp_path / "eu.csv", sep=";", decimal=",")
    proc = run("train", "--data", tmp_path / "eu.csv", "--target", "species", "--out", tmp_path / "r", "-q")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'5,1' is not a number (a decimal comma?)" in proc.stderr, proc.stderr
    assert "decimal=','" in proc.stderr and "encode text" not in proc.stderr
    # Whole-number features and a target with decimal commas: read as text, each value would be a class.
    whole = (df.drop(columns="species") * 10).round().astype(int).assign(ratio=df["sepal length (cm)"] / 3)
    whole.to_csv(tmp_path / "target.csv", sep=";", decimal=",", index=False)
    proc = run("train", "--data", tmp_path / "target.csv", "--target", "ratio", "--out", tmp_path / "t", "-q")
    assert proc.returncode == 2 and "is a number with a decimal comma" in proc.stderr, proc.stderr
    assert not (tmp_path / "t" / "model.safetensors").exists()


def test_pandas_numbers_for_column_names_are_a_header_not_a_row(tmp_path):
    # pd.DataFrame(np.c_[X, y]).to_csv(path, index=False) writes the header 0,1,2,3,4: read as data it was a
    # 151st row of iris and a fourth class '4' holding that one row, with nothing said.
    X, y = datasets.load_iris(return_X_y=True)
    pd.DataFrame(np.c_[X, y]).to_csv(tmp_path / "numbers.csv", index=False)
    proc = run("train", "--data", tmp_path / "numbers.csv", "--epochs", "2", "--out", tmp_path / "r",
               "--no-plots", "-q", check=0)
    assert "the first row is 0, 1, ..., 4: taken as the header pandas writes" in proc.stderr, proc.stderr
    net = dp.load(tmp_path / "r" / "model.safetensors")
    assert net.meta["classes"] == ["0", "1", "2"] and net.meta["feature_names"] == ["0", "1", "2", "3"]
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["data"]["train_rows"] + metrics["data"]["test_rows"] == 150
    # Inputs written the same way (with or without the index) go to a model with named columns in its order,
    # said; their predictions are those of the named file, row for row.
    named = pd.DataFrame(X, columns=[f"x{j}" for j in range(4)]).assign(y=y.astype(int))
    named.to_csv(tmp_path / "named.csv", index=False)
    run("train", "--data", tmp_path / "named.csv", "--epochs", "2", "--out", tmp_path / "n", "--no-plots",
        "-q", check=0)
    base = run("predict", tmp_path / "n" / "model.safetensors", tmp_path / "named.csv", check=0).stdout
    for kw in ({"index": False}, {}):
        pd.DataFrame(X).to_csv(tmp_path / "inputs.csv", **kw)
        proc = run("predict", tmp_path / "n" / "model.safetensors", tmp_path / "inputs.csv", check=0)
        assert proc.stdout == base and "no column names (its header is pandas' 0, 1, ...)" in proc.stderr


def test_missing_values_are_counted_per_column(csvs, tmp_path):
    # pandas writes NaN as an empty cell (or "NaN" with na_rep): the error counts what is missing in each
    # column, so the reader can choose between dropping rows, filling, and --drop, with one run.
    df = pd.read_csv(csvs["iris"], index_col=0)
    df.loc[[3, 9, 40], "sepal width (cm)"] = np.nan
    df.loc[7, "petal length (cm)"] = np.nan
    for name, kw in (("empty.csv", {}), ("nan.csv", {"na_rep": "NaN"})):
        df.to_csv(tmp_path / name, **kw)
        proc = run("train", "--data", tmp_path / name, "--target", "species", "--out", tmp_path / "r", "-q")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "row 4 (line 5), column 'sepal width (cm)'" in proc.stderr, proc.stderr
        assert "missing in all: 'sepal width (cm)' in 3 rows, 'petal length (cm)' in 1 row" in proc.stderr
        assert "df.dropna()" in proc.stderr and "encode text" not in proc.stderr
