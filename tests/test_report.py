"""deltaprop.cli.report: CSV round trips, readable PNGs, tables that hold the numbers, atomic writes."""

import csv
import io
import json
import os

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import metrics
from deltaprop.cli import report
from deltaprop.errors import DeltapropError, InputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(scope="module")
def run():
    """A real classifier run with validation: 10 classes of 8×8 blobs, so the weights are images."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 64)) * 0.35  # close enough to confuse
    y = rng.integers(0, 10, size=400)
    X = centers[y] + rng.normal(size=(400, 64))
    net = dp.Network.from_sizes([64, 16, 10], seed=0)
    hist = dp.fit(net, X[:300], y[:300], epochs=6, batch_size=50, optimizer="adam", lr=0.01,
                  validation_fraction=0.2, seed=0)
    return net, hist, X[300:], y[300:]


@pytest.fixture(scope="module")
def summary(run):
    net, _, X, y = run
    return metrics.classification_summary(y, net.predict(X), FASHION, P=net.forward(X))


def _read_png(path):
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    with Image.open(path) as im:
        im.load()
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
        # not blank: ink on the page (axes, text, data) and more than a couple of shades
        assert pixels.std() > 5 and (pixels < 128).mean() > 0.002, (path, pixels.std())
        assert len(np.unique(pixels)) > 8, path
        assert im.size[0] >= 200 and im.size[1] >= 150, im.size
        return im.size


# -- CSV -----------------------------------------------------------------------------------------------

def test_history_csv_round_trips(run, tmp_path):
    _, hist, _, _ = run
    rows = hist.to_rows()
    path = report.write_history_csv(rows, tmp_path / "history.csv")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        back = list(reader)
    assert reader.fieldnames[:2] == ["epoch", "loss"]
    assert "delta_norm_1" in reader.fieldnames and "dW_norm_2" in reader.fieldnames
    assert len(back) == len(rows) == 6
    for row, got in zip(rows, back):
        assert set(got) == set(row)
        for key, value in row.items():
            assert float(got[key]) == value  # exact: shortest repr round-trips
    # the file diagnose reads is the file we wrote: every epoch, with the per-layer norms
    from deltaprop.teach.diagnose import read_history

    read, _ = read_history(path)
    assert [r["epoch"] for r in read] == [r["epoch"] for r in rows]
    assert dp.diagnose(path).n_epochs == len(rows)


def test_history_csv_header_is_the_union_in_first_seen_order(tmp_path):
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4, "val_loss": 0.45}, {"epoch": 3, "lr": 0.1}]
    path = report.write_history_csv(rows, tmp_path / "h.csv")
    text = path.read_text(encoding="utf-8").splitlines()
    assert text[0] == "epoch,loss,val_loss,lr"
    assert text[1:] == ["1,0.5,,", "2,0.4,0.45,", "3,,,0.1"]
    with pytest.raises(InputError, match="empty"):
        report.write_history_csv([], tmp_path / "e.csv")


def test_writes_are_atomic(tmp_path):
    path = tmp_path / "history.csv"
    report.write_history_csv([{"epoch": 1, "loss": 1.0}], path)
    before = path.read_bytes()

    class Unprintable:  # a value that fails while the file is being written
        def __str__(self):
            raise ValueError("cannot format")

    with pytest.raises(ValueError):
        report.write_history_csv([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": Unprintable()}], path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["history.csv"]  # no temporary file left behind
    with pytest.raises(DeltapropError, match="cannot write") as err:
        report.write_history_csv([{"epoch": 1}], tmp_path / "missing" / "h.csv")
    assert "writable" in err.value.hint


# -- plots ---------------------------------------------------------------------------------------------

def test_plot_history_classifier_has_two_panels_regression_one(run, tmp_path):
    _, hist, _, _ = run
    w2, h2 = _read_png(report.plot_history(hist.to_rows(), tmp_path / "history.png"))
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    reg = dp.Network.from_sizes([3, 8, 1], output="identity", seed=0)
    rows = dp.fit(reg, X, X @ [1.0, -2.0, 0.5], epochs=4, optimizer="sgd", batch_size=None, lr=0.05).to_rows()
    assert "accuracy" not in rows[0]
    w1, h1 = _read_png(report.plot_history(rows, tmp_path / "regression.png"))
    assert h1 == h2 and 350 <= h1 <= 450
    assert w2 > 1.6 * w1  # the accuracy panel is there for the classifier only
    # a history.csv read back plots the same way
    report.write_history_csv(hist.to_rows(), tmp_path / "history.csv")
    assert _read_png(report.plot_history(tmp_path / "history.csv", tmp_path / "again.png")) == (w2, h2)


def test_plot_confusion_and_first_layer(run, summary, tmp_path):
    net, _, _, _ = run
    cm = np.array(summary["confusion_matrix"])
    for normalize in (True, False):
        w, h = _read_png(report.plot_confusion(cm, FASHION, tmp_path / f"cm{normalize}.png", normalize=normalize))
        assert 500 <= w <= 1200 and 500 <= h <= 1200
    svg = report.plot_confusion(cm, FASHION, tmp_path / "cm.svg")
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    with pytest.raises(InputError, match="class names"):
        report.plot_confusion(cm, FASHION[:9], tmp_path / "bad.png")

    w, h = _read_png(report.plot_first_layer(net.layers[0].W, (8, 8), tmp_path / "w1.png"))
    assert 300 <= w <= 1200 and 300 <= h <= 1200
    few = _read_png(report.plot_first_layer(net, (8, 8), tmp_path / "w1_4.png", max_units=4))
    assert few[1] < h  # 2 rows of units instead of 4
    with pytest.raises(InputError, match="64 inputs"):
        report.plot_first_layer(net.layers[0].W, (7, 7), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_plot_gradient_flow(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    y = (X[:, 0] > 0).astype(int)
    deep = dp.Network.from_sizes([8] + [16] * 6 + [2], hidden="sigmoid", seed=0)
    rows = dp.fit(deep, X, y, epochs=4, optimizer="sgd", batch_size=None, lr=0.1).to_rows()
    w, h = _read_png(report.plot_gradient_flow(rows, tmp_path / "flow.png"))
    assert 800 <= w <= 1400 and 350 <= h <= 500
    with pytest.raises(InputError, match="gradient-flow"):
        report.plot_gradient_flow([{"epoch": 1, "loss": 1.0}], tmp_path / "none.png")


# -- text ----------------------------------------------------------------------------------------------

def test_per_class_table_holds_the_numbers_and_fits_80_columns(summary):
    text = report.per_class_table(summary)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    for name, s in summary["per_class"].items():
        line = next(ln for ln in lines if ln.startswith(name))
        assert line.split()[-4:] == [f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}",
                                     str(s["support"])]
    assert f"{summary['accuracy']:.3f}" in next(ln for ln in lines if ln.startswith("accuracy"))
    assert f"{summary['macro_f1']:.3f}" in next(ln for ln in lines if ln.startswith("macro avg"))
    assert f"{summary['log_loss']:.4f}" in text
    # a summary read back from JSON renders the same
    assert report.per_class_table(json.loads(json.dumps(summary))) == text


def test_long_class_names_are_cut(run):
    net, _, X, y = run
    names = [f"{n} from the autumn catalogue" for n in FASHION]
    s = metrics.classification_summary(y, net.predict(X), names)
    text = report.per_class_table(s)
    assert max(map(len, text.splitlines())) <= 80
    assert names[0][:19] + "…" in text and "catalogue" not in text
    table = report.confusion_table(np.array(s["confusion_matrix"]), names)
    assert max(map(len, table.splitlines())) <= 80


def test_confusion_table_holds_every_count(summary):
    cm = np.array(summary["confusion_matrix"])
    text = report.confusion_table(cm, FASHION)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    assert len(lines) == 1 + 10 + 1
    for k, name in enumerate(FASHION):
        cells = lines[1 + k].split()[-11:]
        assert [int(c) for c in cells[:10]] == cm[k].tolist()
        assert int(cells[10]) == cm[k].sum()
        assert name in lines[1 + k]
    assert [int(c) for c in lines[-1].split()[1:]] == cm.sum(axis=0).tolist() + [cm.sum()]
    # short names head the columns themselves; counts of four digits still fit
    big = report.confusion_table(cm * 100 + 9, [str(k) for k in range(10)])
    assert big.splitlines()[0].split()[3:13] == [str(k) for k in range(10)]
    assert max(map(len, big.splitlines())) <= 80


def test_rich_table(summary):
    pytest.importorskip("rich")
    from rich.console import Console

    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(report.rich_per_class_table(summary))
    out = console.file.getvalue()
    for name, s in summary["per_class"].items():
        assert name in out and f"{s['f1']:.3f}" in out
    assert f"accuracy {summary['accuracy']:.3f}" in out and "macro avg" in out


def test_history_summary(run):
    _, hist, _, _ = run
    text = report.history_summary(hist)
    last = hist.epochs[-1]
    assert text.startswith("6 epochs in ")
    assert f"→ {last['loss']:.4g}" in text and f"→ {last['val_accuracy']:.4g}" in text
    assert "validation loss" in text and "ms per epoch" in text
    best = int(np.argmin(hist.val_loss)) + 1
    assert f"lowest {min(hist.val_loss):.4g} at epoch {best}" in text
    assert "\n" not in text
    stopped = dp.History(epochs=[dict(e) for e in hist.epochs], stop_reason="early stopping: no improvement")
    assert report.history_summary(stopped).endswith("Stopped: early stopping: no improvement.")
    assert report.history_summary([]) == "No epochs recorded."
    one = report.history_summary(hist.to_rows()[:1])
    assert one.startswith("1 epoch in ") and "→" not in one and f"loss {hist.loss[0]:.4g}" in one


def test_gradcheck_table_reuses_the_report_and_marks_failures():
    rng = np.random.default_rng(0)
    net = dp.Network.from_sizes([4, 5, 3], hidden="tanh", seed=0, dtype="float64")
    X, y = rng.normal(size=(6, 4)), np.array([0, 1, 2, 0, 1, 2])
    good = dp.gradcheck(net, X, y)
    assert report.gradcheck_table(good) == good.to_text()
    assert "PASSED" in report.gradcheck_table(good) and " NO" not in report.gradcheck_table(good)
    _, grads = net.backprop(X, y)
    wrong = [(dW.copy(), db.copy()) for dW, db in grads]
    wrong[0][0][0, 0] += 0.1  # a slip in one entry of dW_1
    bad = dp.gradcheck(net, X, y, grads=wrong)
    text = report.gradcheck_table(bad)
    row_w1 = next(ln for ln in text.splitlines() if ln.split()[:2] == ["1", "W"])
    assert row_w1.endswith("NO") and text.splitlines()[-1].startswith("FAILED")
    assert report.gradcheck_table(json.loads(json.dumps(bad.to_dict()))) == text
    with pytest.raises(InputError):
        report.gradcheck_table({"rows": "nope"})


def test_import_is_light():
    """report imports matplotlib and rich only when a plot or a rich table is asked for."""
    import subprocess
    import sys

    code = ("import sys, deltaprop.cli.report, deltaprop.metrics; "
            "print(any(m.split('.')[0] in ('matplotlib', 'rich', 'sklearn') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
