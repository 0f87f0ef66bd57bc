"""Run directories (one run each, run.json, --overwrite, --resume, runs/latest) meeting data as people
have it (scikit-learn's bundled sets written by pandas, --drop, files that move): the real command
(``python -m deltaprop``) in a scratch directory, as a user types it."""

from __future__ import annotations

import csv
import json
import os
import shutil

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
datasets = pytest.importorskip("sklearn.datasets")

from cli_child import run  # noqa: E402

QUICK = ("--epochs", "2", "--layers", "8", "--quiet")


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc


def refused(proc, code, *words):
    assert proc.returncode == code, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    return proc


def iris_csv(path, **kw):
    bunch = datasets.load_iris(as_frame=True)
    df = bunch.frame.assign(target=[bunch.target_names[t] for t in bunch.target]).rename(
        columns={"target": "species"})
    df.to_csv(path, **kw)
    return path


def test_a_refused_training_leaves_no_run_and_runs_latest_where_it_was(tmp_path):
    iris_csv(tmp_path / "iris.csv")
    ok(run("train", "--data", "iris.csv", "--target", "species", *QUICK, "--no-plots", cwd=tmp_path))
    first = os.readlink(tmp_path / "runs" / "latest")
    # A mistyped column, a training that asks for the task: refused before training starts.
    refused(run("train", "--data", "iris.csv", "--target", "Species", *QUICK, cwd=tmp_path), 2, "no column 'Species'")
    refused(run("train", "--data", "iris.csv", "--target", "nope", "--out", "runs/typo", *QUICK, cwd=tmp_path), 2)
    assert sorted(os.listdir(tmp_path / "runs")) == sorted([first, "latest"])
    assert os.readlink(tmp_path / "runs" / "latest") == first
    proc = ok(run("evaluate", "runs/latest/model.safetensors", cwd=tmp_path))
    assert "test split, 45 rows" in proc.stdout


def test_overwrite_removes_the_old_runs_roc_and_residuals_plots(tmp_path):
    datasets.load_breast_cancer(as_frame=True).frame.to_csv(tmp_path / "bc.csv")
    datasets.load_diabetes(as_frame=True, scaled=False).frame.to_csv(tmp_path / "diabetes.csv")
    iris_csv(tmp_path / "iris.csv")
    out = tmp_path / "run"
    ok(run("train", "--data", tmp_path / "bc.csv", "--target", "target", "--out", out, *QUICK))
    assert (out / "roc.png").is_file()
    ok(run("train", "--data", tmp_path / "iris.csv", "--target", "species", "--out", out, "--overwrite", *QUICK))
    metrics = json.loads((out / "metrics.json").read_text())
    assert "roc.png" not in metrics["files"] and not (out / "roc.png").exists()  # not the old run's curve
    shutil.rmtree(out)
    ok(run("train", "--data", tmp_path / "diabetes.csv", "--target", "target", "--task", "regression", "--out", out,
           *QUICK))
    assert (out / "residuals.png").is_file()
    ok(run("train", "--data", tmp_path / "iris.csv", "--target", "species", "--out", out, "--overwrite", *QUICK))
    assert not (out / "residuals.png").exists()
    # A directory that holds only such a plot still belongs to a run: refused without --overwrite.
    shutil.rmtree(out)
    out.mkdir()
    (out / "roc.png").write_bytes(b"\x89PNG")
    refused(run("train", "--data", tmp_path / "iris.csv", "--target", "species", "--out", out, *QUICK), 2,
            "already holds a run", "roc.png")


def test_columns_left_out_with_drop_are_left_out_by_evaluate_and_predict(tmp_path):
    bunch = datasets.load_wine(as_frame=True)
    df = bunch.frame
    df.insert(0, "sample", [f"W-{i:03d}" for i in range(len(df))])  # text: not even a number
    df.to_csv(tmp_path / "wine.csv")  # pandas' index too
    out = tmp_path / "run"
    ok(run("train", "--data", "wine.csv", "--target", "target", "--drop", "sample,proline", "--out", out,
           "--epochs", "30", "--quiet", cwd=tmp_path))
    test_accuracy = json.loads((out / "metrics.json").read_text())["test"]["accuracy"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    model = out / "model.safetensors"
    # The very file the model was trained on: every row, and its test split as training had it.
    proc = ok(run("evaluate", model, "--data", tmp_path / "wine.csv", cwd=elsewhere))
    assert "'sample', 'proline' were left out in training (--drop): left out here too" in proc.stderr
    assert "all rows, 178 rows" in proc.stdout
    proc = ok(run("evaluate", model, "--data", tmp_path / "wine.csv", "--split", "test", "--json", cwd=elsewhere))
    assert json.loads(proc.stdout)["accuracy"] == test_accuracy
    # predict on the file with those columns, and on one without them: the same predictions.
    with_them = ok(run("predict", model, tmp_path / "wine.csv", cwd=elsewhere))
    assert "left out in training (--drop)" in with_them.stderr
    df.drop(columns=["sample", "proline", "target"]).iloc[:, ::-1].to_csv(tmp_path / "inputs.csv", index=False)
    without = ok(run("predict", model, tmp_path / "inputs.csv", cwd=elsewhere))
    assert with_them.stdout == without.stdout
    assert len(list(csv.reader(with_them.stdout.splitlines()))) == 179
    # A column the model never saw is still named, not silently ignored.
    df.assign(colour=1.0).drop(columns="target").to_csv(tmp_path / "extra.csv", index=False)
    refused(run("predict", model, tmp_path / "extra.csv"), 2, "'colour' the model does not know")


def test_resume_after_the_csv_moved_or_was_renamed(tmp_path):
    iris_csv(tmp_path / "iris.csv", sep=";")
    ok(run("train", "--data", "iris.csv", "--target", "species", "--out", "run", "--checkpoint-every", "1",
           *QUICK, "--no-plots", cwd=tmp_path))
    (tmp_path / "data").mkdir()
    os.rename(tmp_path / "iris.csv", tmp_path / "data" / "iris-2026.csv")  # moved and renamed
    refused(run("train", "--resume", "run", "--epochs", "3", cwd=tmp_path), 2, "iris.csv", "no such file",
            "--resume run --data PATH")
    ok(run("train", "--resume", "run", "--epochs", "3", "--data", "data/iris-2026.csv", "-q", cwd=tmp_path))
    ok(run("train", "--resume", tmp_path / "run", "--epochs", "4", "-q", cwd="/"))  # the new place is kept
    # Other contents under the same name are still refused.
    with open(tmp_path / "data" / "iris-2026.csv", "a") as f:
        f.write("5.0;3.0;1.5;0.2;setosa\n")
    refused(run("train", "--resume", "run", "--epochs", "5", cwd=tmp_path), 2, "changed since the run started")
    shutil.copy(tmp_path / "data" / "iris-2026.csv", tmp_path / "other.csv")
    refused(run("train", "--resume", "run", "--epochs", "5", "--data", "other.csv", cwd=tmp_path), 2,
            "not the data this run was trained on")


def test_evaluate_after_the_csv_moved(tmp_path):
    iris_csv(tmp_path / "iris.csv", index=False)
    ok(run("train", "--data", "iris.csv", "--target", "species", "--out", "run", "--epochs", "20", "--quiet",
           "--no-plots", cwd=tmp_path))
    test_accuracy = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"]
    os.rename(tmp_path / "iris.csv", tmp_path / "moved.csv")
    proc = refused(run("evaluate", "run/model.safetensors", cwd=tmp_path), 2, "iris.csv is gone", "--split test")
    assert "with --data " + str(tmp_path / "iris.csv") not in proc.stderr  # never points at the missing file
    proc = ok(run("evaluate", "run/model.safetensors", "--data", "moved.csv", "--split", "test", "--json",
                  cwd=tmp_path))
    assert json.loads(proc.stdout)["accuracy"] == test_accuracy and "not the file" not in proc.stderr
    # Another file split the same way is not the held-out rows: said.
    rows = (tmp_path / "moved.csv").read_text().splitlines()
    (tmp_path / "changed.csv").write_text("\n".join(rows[:1] + rows[1:][::-1]) + "\n")
    proc = ok(run("evaluate", "run/model.safetensors", "--data", "changed.csv", "--split", "test", cwd=tmp_path))
    assert "changed.csv is not the file the model was trained on" in proc.stderr
    assert np.isfinite(float(proc.stdout.split("accuracy ")[1].split()[0]))


def test_a_second_training_into_a_finished_run_is_told_what_it_can_do(tmp_path):
    iris_csv(tmp_path / "iris.csv")
    ok(run("train", "--data", "iris.csv", "--target", "species", "--out", "done", *QUICK, "--no-plots", cwd=tmp_path))
    proc = refused(run("train", "--data", "iris.csv", "--target", "species", "--out", "done", *QUICK, cwd=tmp_path),
                   2, "already holds a run", "--overwrite")
    assert "--resume" not in proc.stderr  # a finished run without a checkpoint has nothing to continue
    refused(run("train", "--resume", "done", cwd=tmp_path), 2, "nothing left to do")
    ok(run("train", "--data", "iris.csv", "--target", "species", "--out", "kept", "--checkpoint-every", "1", *QUICK,
           "--no-plots", cwd=tmp_path))
    refused(run("train", "--data", "iris.csv", "--target", "species", "--out", "kept", *QUICK, cwd=tmp_path), 2,
            "train it longer with deltaprop train --resume kept --epochs N")
    ok(run("train", "--resume", "kept", "--epochs", "3", cwd=tmp_path))


def test_predict_onto_a_directory_is_a_usage_error(tmp_path):
    iris_csv(tmp_path / "iris.csv", index=False)
    ok(run("train", "--data", "iris.csv", "--target", "species", "--out", "run", *QUICK, "--no-plots", cwd=tmp_path))
    (tmp_path / "out").mkdir()
    refused(run("predict", "run/model.safetensors", "iris.csv", "-o", "out", cwd=tmp_path), 2,
            "-o out is a directory", "out/predictions.csv")
    assert os.listdir(tmp_path / "out") == []
    proc = ok(run("predict", "run/model.safetensors", "iris.csv", "-o", "out/predictions.csv", cwd=tmp_path))
    assert "wrote 150 predictions to out/predictions.csv" in proc.stderr
    assert (tmp_path / "out" / "predictions.csv").read_text().startswith("label,p_setosa,p_versicolor,p_virginica\n")
    ok(run("predict", "run/model.safetensors", "iris.csv", "-o", os.devnull, cwd=tmp_path))
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)


def test_the_training_time_of_a_small_data_set_is_not_printed_as_zero(tmp_path):
    iris_csv(tmp_path / "iris.csv")
    proc = ok(run("train", "--data", "iris.csv", "--target", "species", "--out", "run", "--epochs", "3", "--layers", "8",
                  "--no-plots", cwd=tmp_path))
    line = next(l for l in proc.stdout.splitlines() if "s of training)" in l)
    shown_seconds = float(line.split("test rows, ")[1].split(" s of training")[0])
    measured = json.loads((tmp_path / "run" / "metrics.json").read_text())["train_seconds"]
    assert shown_seconds > 0 and abs(shown_seconds - measured) <= 0.01 * measured, (line, measured)


def test_a_second_search_into_one_directory_is_refused_before_any_fit(tmp_path):
    iris_csv(tmp_path / "iris.csv")
    datasets.load_wine(as_frame=True).frame.to_csv(tmp_path / "wine.csv")
    search = ("search", "--grid", "layers=4|8", "--cv", "2", "--epochs", "2", "--workers", "1", "-q", "--no-plots")
    ok(run(*search, "--data", "wine.csv", "--target", "target", "--out", "s", cwd=tmp_path))
    table = (tmp_path / "s" / "search.csv").read_text()
    model = (tmp_path / "s" / "model.safetensors").read_bytes()
    # Another data set into the same --out: refused at once, the first search and its model untouched
    # (it used to search, overwrite search.csv, and only then refuse the retraining).
    refused(run(*search, "--data", "iris.csv", "--target", "species", "--out", "s", cwd=tmp_path), 2,
            "already holds a search", "--overwrite")
    assert (tmp_path / "s" / "search.csv").read_text() == table
    assert (tmp_path / "s" / "model.safetensors").read_bytes() == model
    refused(run(*search, "--data", "iris.csv", "--target", "species", "--out", "s", "--no-retrain", cwd=tmp_path), 2,
            "already holds a search")
    ok(run(*search, "--data", "iris.csv", "--target", "species", "--out", "s", "--overwrite", cwd=tmp_path))
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["data"]["classes"] == [
        "setosa", "versicolor", "virginica"]
    assert (tmp_path / "s" / "search.csv").read_text() != table


def test_a_named_column_of_row_numbers_is_pointed_out_with_its_drop(tmp_path):
    df = datasets.load_wine(as_frame=True).frame  # rows sorted by class: row numbers give the class away
    df.index.name = "id"
    df.to_csv(tmp_path / "wine.csv")
    proc = ok(run("train", "--data", "wine.csv", "--target", "target", "--out", "with_id", *QUICK, cwd=tmp_path))
    assert "the column 'id' holds the row numbers 0..177: taken as a feature" in proc.stderr
    assert "--drop id" in proc.stderr
    proc = ok(run("train", "--data", "wine.csv", "--target", "target", "--drop", "id", "--out", "without", *QUICK,
                  cwd=tmp_path))
    assert "row numbers" not in proc.stderr
    # pandas' unnamed index is still left out on its own, with its own note.
    df.rename_axis(None).to_csv(tmp_path / "plain.csv")
    proc = ok(run("train", "--data", "plain.csv", "--target", "target", "--out", "plain", *QUICK, cwd=tmp_path))
    assert "left out, not a feature" in proc.stderr and "taken as a feature" not in proc.stderr


def test_runs_latest_on_a_stopped_run_says_so_and_resumes_by_its_own_name(tmp_path):
    iris_csv(tmp_path / "iris.csv")
    ok(run("train", "--data", "iris.csv", "--target", "species", "--out", "runs/first", "--checkpoint-every", "1",
           *QUICK, "--no-plots", cwd=tmp_path))
    os.unlink(tmp_path / "runs" / "first" / "model.safetensors")  # stopped before its model was saved
    assert os.readlink(tmp_path / "runs" / "latest") == "first"
    for command in ("evaluate", "info"):
        proc = refused(run(command, "runs/latest/model.safetensors", cwd=tmp_path), 3,
                       "runs/latest holds a run that was stopped before it saved its model",
                       "deltaprop train --resume runs/latest")
        assert "no such model file" not in proc.stderr
    # Resumed through runs/latest, the run speaks of its own directory: runs/latest moves on with the next run.
    proc = ok(run("train", "--resume", "runs/latest", "--epochs", "3", "--no-plots", cwd=tmp_path))
    assert "saved: runs/first/model.safetensors" in proc.stdout and "runs/latest" not in proc.stdout
    ok(run("evaluate", "runs/latest/model.safetensors", cwd=tmp_path))


def test_tab_separated_files_named_tsv_train_evaluate_and_predict(tmp_path):
    iris_csv(tmp_path / "iris.tsv", sep="\t", index=False)
    ok(run("train", "--data", "iris.tsv", "--target", "species", "--out", "run", "--epochs", "20", "--quiet",
           "--no-plots", cwd=tmp_path))
    test_accuracy = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"]
    proc = ok(run("evaluate", "run/model.safetensors", "--data", "iris.tsv", "--split", "test", "--json", cwd=tmp_path))
    assert json.loads(proc.stdout)["accuracy"] == test_accuracy
    proc = ok(run("predict", "run/model.safetensors", "iris.tsv", cwd=tmp_path))
    assert proc.stdout.startswith("label,p_setosa") and len(proc.stdout.splitlines()) == 151
    # Any other name is not guessed; text given where an IDX file is read says what it is.
    shutil.copy(tmp_path / "iris.tsv", tmp_path / "iris.txt")
    proc = refused(run("predict", "run/model.safetensors", "iris.txt", cwd=tmp_path), 2, "iris.txt is text",
                   ".csv or .tsv name")
    assert "gzip" not in proc.stderr


def test_names_with_dollar_signs_are_drawn_as_written(tmp_path):
    # Price bands as class names: matplotlib read '$0-$50' as mathematics (drawn '0 − 50'), and a name
    # that is not valid mathematics ('$5^$') broke confusion.png and roc.png.
    bunch = datasets.load_breast_cancer(as_frame=True)
    df = bunch.frame.drop(columns="target").assign(band=[["$0-$50", "$5^$ and up"][t] for t in bunch.target])
    df.to_csv(tmp_path / "bands.csv", index=False)
    out = tmp_path / "bands"
    ok(run("train", "--data", "bands.csv", "--target", "band", "--out", out, *QUICK, cwd=tmp_path))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["problems"] == [] and {"confusion.png", "roc.png"} <= set(metrics["files"])
    assert (out / "confusion.png").stat().st_size > 10000 and (out / "roc.png").stat().st_size > 10000
    df = datasets.load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "cost in $^$"})
    df.to_csv(tmp_path / "cost.csv", index=False)
    out = tmp_path / "cost"
    ok(run("train", "--data", "cost.csv", "--target", "cost in $^$", "--task", "regression", "--out", out, *QUICK,
           cwd=tmp_path))
    assert json.loads((out / "metrics.json").read_text())["problems"] == [] and (out / "residuals.png").is_file()


def test_search_takes_drop_and_delimiter_as_train_does(tmp_path):
    df = datasets.load_wine(as_frame=True).frame
    df.insert(0, "sample", [f"W-{i:03d}" for i in range(len(df))])
    df.to_csv(tmp_path / "wine.csv", sep=";")
    proc = ok(run("search", "--data", "wine.csv", "--target", "target", "--drop", "sample", "--delimiter", "semicolon",
                  "--grid", "layers=4|8", "--cv", "2", "--epochs", "2", "--workers", "1", "--no-plots", "--out", "s",
                  cwd=tmp_path))
    assert "the index pandas' to_csv writes" in proc.stderr  # the reader's notes are said, as train says them
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert metrics["config"]["drop"] == "sample" and metrics["data"]["features"] == 13  # the retraining got them
    ok(run("predict", "s/model.safetensors", "wine.csv", cwd=tmp_path))


def test_search_takes_class_weight_as_train_does(tmp_path):
    # An imbalanced breast-cancer subset (357 benign, 25 malignant): --class-weight balanced reaches every
    # fold's fit (they differ from the unweighted ones) and the retraining (its metrics.json records it).
    df = datasets.load_breast_cancer(as_frame=True).frame
    df = pd.concat([df[df.target == 1], df[df.target == 0].iloc[:25]])
    df.to_csv(tmp_path / "bc.csv", index=False)
    common = ("search", "--data", "bc.csv", "--target", "target", "--grid", "lr=0.003", "--cv", "2", "--epochs", "3",
              "--workers", "1", "--no-plots")
    ok(run(*common, "--out", "plain", "--no-retrain", cwd=tmp_path))
    ok(run(*common, "--class-weight", "balanced", "--out", "weighted", cwd=tmp_path))
    plain = (tmp_path / "plain" / "search.csv").read_text().splitlines()[1].split(",")
    weighted = (tmp_path / "weighted" / "search.csv").read_text().splitlines()[1].split(",")
    assert plain[1:4] != weighted[1:4]  # the weighted fits score differently
    metrics = json.loads((tmp_path / "weighted" / "metrics.json").read_text())
    assert metrics["config"]["class_weight"] == "balanced"
    assert "--class-weight" in run("search", "--help", cwd=tmp_path).stdout


def test_search_says_the_readers_notes_once(tmp_path):
    # The search reads the file, then retrains the best combination as `deltaprop train` would: what the
    # reader decided (the delimiter, the pandas index column) is said once, not again by the retraining.
    iris_csv(tmp_path / "iris.csv", sep=";")
    proc = ok(run("search", "--data", "iris.csv", "--target", "species", "--grid", "layers=4|8", "--cv", "2",
                  "--epochs", "2", "--workers", "1", "--no-plots", "--out", "s", cwd=tmp_path))
    assert proc.stderr.count("separated by a semicolon") == 1, proc.stderr
    assert proc.stderr.count("the index pandas' to_csv writes") == 1, proc.stderr
    assert (tmp_path / "s" / "model.safetensors").is_file()  # the retraining ran
    assert "notes_said" not in json.loads((tmp_path / "s" / "metrics.json").read_text())["config"]


def test_info_says_how_the_runs_csv_was_read(tmp_path):
    # Reopening a run: the delimiter the file was read with and every column left out (pandas' index, --drop)
    # are in `deltaprop info`, as text and JSON, for the model file and for its run directory.
    df = datasets.load_wine(as_frame=True).frame
    df.insert(0, "sample", [f"W-{i:03d}" for i in range(len(df))])
    df.to_csv(tmp_path / "wine.csv", sep=";")
    ok(run("train", "--data", "wine.csv", "--target", "target", "--drop", "sample", *QUICK, "--no-plots",
           "--out", "w", cwd=tmp_path))
    text = ok(run("info", "w", cwd=tmp_path)).stdout
    (line,) = [line for line in text.splitlines() if line.strip().startswith("read ")]
    assert "semicolon-separated (detected)" in line, text
    assert "the unnamed first column (pandas' index)" in line and "'sample' (--drop)" in line, text
    info = json.loads(ok(run("info", "w/model.safetensors", "--json", cwd=tmp_path)).stdout)
    assert info["data"]["read"] == {"format": "csv", "delimiter": "semicolon", "delimiter_detected": True,
                                    "header": True, "left_out": [{"column": "", "why": "index"},
                                                                 {"column": "sample", "why": "drop"}]}
    assert json.loads((tmp_path / "w" / "metrics.json").read_text())["data"]["read"] == info["data"]["read"]
    # A delimiter given on the command line, and a file without an index column: said as such.
    df.drop(columns="sample").to_csv(tmp_path / "plain.csv", index=False, sep="\t")
    ok(run("train", "--data", "plain.csv", "--delimiter", "tab", *QUICK, "--no-plots", "--out", "p",
           cwd=tmp_path))
    text = ok(run("info", "p/model.safetensors", cwd=tmp_path)).stdout
    assert "read        tab-separated (given with --delimiter); no column left out" in text, text
