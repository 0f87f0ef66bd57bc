"""diagnose, gradcheck and trace give honest verdicts: the classic failure runs, trained on the digits
with the real command, each get their finding; healthy runs get none; correct deep networks pass
the gradient check and a planted wrong gradient fails it."""

import contextlib
import csv
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import deltaprop as dp
from cli_child import run
from deltaprop.cli.main import main as deltaprop_main
from deltaprop.teach.diagnose import CHECKS, DeadUnitMonitor
from deltaprop.teach.trace import random_batch
from deltaprop.train import Callback

SEEDS = (0, 1, 2)

# name: (train options, codes that must be found, codes that must not)
RUNS = {
    # Dead ReLUs from a learning rate too high for each optimizer: the first epoch throws the units'
    # biases far negative; the network then answers one class.
    "sgd_lr5": ("--layers 64,64 --optimizer sgd --lr 5 --epochs 4",
                {"dead_relu", "lr_too_high", "learned_nothing", "loss_exploded"}, {"underfitting"}),
    # (After 5 epochs a few units may still be alive, with an accuracy of 0.2: not yet "nothing".)
    "momentum_lr1": ("--layers 64,64 --optimizer momentum --lr 1 --epochs 5", {"dead_relu", "lr_too_high"},
                     {"underfitting", "overfitting"}),
    "adam_lr0.1": ("--layers 64,64 --optimizer adam --lr 0.1 --epochs 5", {"dead_relu", "lr_too_high"},
                   {"learned_nothing", "underfitting"}),
    # Ten layers of weights with sigmoid units: ‖dW_1‖ is about 1e-5 of ‖dW_10‖.
    "sigmoid_10_layers": ("--layers 32,32,32,32,32,32,32,32,32 --activation sigmoid --optimizer sgd --lr 0.1 "
                          "--epochs 3", {"vanishing_gradients"}, {"dead_relu"}),
    # Epoch 1's mean loss is 1e7 to 1e17.
    "momentum_lr50": ("--layers 64,64 --optimizer momentum --lr 50 --epochs 3", {"loss_exploded", "lr_too_high"},
                      set()),
    # 512 units on 45 training rows (and 45 validation rows) for 40 epochs.
    "wide_on_few_rows": ("--layers 512 --test-fraction 0.95 --val-fraction 0.5 --scale standard --optimizer adam "
                         "--lr 0.01 --batch-size 16 --epochs 40", {"overfitting"}, {"underfitting", "dead_relu"}),
    "two_epochs": ("--layers 64 --epochs 2", {"underfitting"}, {"learned_nothing", "overfitting"}),
    "healthy_adam": ("--layers 64 --epochs 60 --early-stopping 5", set(), None),
    "healthy_sgd": ("--layers 64 --optimizer sgd --lr 0.1 --epochs 20", set(), None),
}


def cli_main(argv, stdout):
    """The ``deltaprop`` command in this process, its standard output into ``stdout``."""
    with contextlib.redirect_stdout(stdout):
        return deltaprop_main(argv)


def _train(args):
    name, seed, out = args
    proc = run("train", *RUNS[name][0].split(), "--seed", seed, "--out", out, "--no-plots", "-q", timeout=600)
    return name, seed, proc


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every run of RUNS for every seed, trained by the command, one per core at a time."""
    root = tmp_path_factory.mktemp("runs")
    jobs = [(name, seed, root / f"{name}_{seed}") for name in RUNS for seed in SEEDS]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        for name, seed, proc in pool.map(_train, jobs):
            assert proc.returncode in (0, 4), (name, seed, proc.stderr[-2000:])
    return root


def _diagnose_json(run_dir, *extra, alias=False):
    cmd = (["explain", "--diagnose", str(run_dir)] if alias else ["diagnose", str(run_dir)]) + ["--format", "json",
                                                                                                 *extra]
    out = io.StringIO()
    assert cli_main(cmd, stdout=out) == 0
    return json.loads(out.getvalue())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(RUNS))
def test_each_classic_run_gets_its_finding(runs, name, seed):
    _, must, must_not = RUNS[name]
    d = _diagnose_json(runs / f"{name}_{seed}", alias=seed == 1)
    codes = {f["code"] for f in d["findings"]}
    assert must <= codes, (name, seed, codes)
    if must_not is None:  # a healthy run: no finding at all, and every check ran
        assert codes == set() and d["ok"] and d["complete"], d
    else:
        assert not codes & must_not, (name, seed, codes)
    assert [c["name"] for c in d["checks"]] == [name for name, _, _ in CHECKS]
    # What could not run says why: only the checks that need more epochs than these short runs have.
    assert {c["name"] for c in d["checks"] if not c["ran"]} <= {"overfitting", "stalled"}, d["checks"]
    for f in d["findings"]:
        # Remedies in the command's syntax: flags, never Python keywords.
        assert "lr=" not in f["suggestion"] and "early_stopping=" not in f["suggestion"], f
        assert "hidden=" not in f["suggestion"] and "l2=" not in f["suggestion"], f


def test_findings_name_the_real_layer_activation_epoch_and_figure(runs):
    d = _diagnose_json(runs / "sigmoid_10_layers_0")
    (v,) = [f for f in d["findings"] if f["code"] == "vanishing_gradients"]
    assert v["layer"] == 1 and v["value"] < 1e-3 and "sigmoid" in v["evidence"] and "tanh instead" not in v["evidence"]
    assert "--activation relu" in v["suggestion"]
    rows = list(csv.DictReader(open(runs / "sigmoid_10_layers_0" / "history.csv")))
    ratio = np.median([float(r["dW_norm_1"]) / max(float(r[f"dW_norm_{k}"]) for k in range(1, 11)) for r in rows])
    assert v["value"] == pytest.approx(ratio, rel=1e-9)
    d = _diagnose_json(runs / "sgd_lr5_0")
    dead = next(f for f in d["findings"] if f["code"] == "dead_relu")
    last = list(csv.DictReader(open(runs / "sgd_lr5_0" / "history.csv")))[-1]
    assert dead["value"] == max(float(last["dead_fraction_1"]), float(last["dead_fraction_2"]))
    assert "--lr 0.5" in dead["suggestion"]
    exploded = next(f for f in d["findings"] if f["code"] == "loss_exploded")
    assert exploded["epoch"] == 1 and exploded["value"] == pytest.approx(float(
        next(csv.DictReader(open(runs / "sgd_lr5_0" / "history.csv")))["loss"]))
    over = next(f for f in _diagnose_json(runs / "wide_on_few_rows_0")["findings"] if f["code"] == "overfitting")
    assert "--early-stopping 5" in over["suggestion"] and "--l2 0.1" in over["suggestion"]


def test_history_csv_records_dead_units_per_layer(runs):
    rows = list(csv.DictReader(open(runs / "adam_lr0.1_0" / "history.csv")))
    assert {"dead_fraction_1", "dead_fraction_2"} <= set(rows[0])
    assert all(r["dead_fraction_3"] == "" for r in rows)  # the softmax layer is not ReLU
    assert float(rows[-1]["dead_fraction_1"]) >= 0.5
    healthy = list(csv.DictReader(open(runs / "healthy_sgd_0" / "history.csv")))
    assert float(healthy[-1]["dead_fraction_1"]) < 0.2
    sigmoid = list(csv.DictReader(open(runs / "sigmoid_10_layers_0" / "history.csv")))
    assert not any(k.startswith("dead_fraction") for k in sigmoid[0])


def test_diagnose_with_data_counts_the_saved_models_dead_units(runs):
    d = _diagnose_json(runs / "adam_lr0.1_1", "--data")
    dead = next(f for f in d["findings"] if f["code"] == "dead_relu")
    assert "training rows of digits" in dead["evidence"]
    net = dp.load(runs / "adam_lr0.1_1" / "model.safetensors")
    from deltaprop.cli.common import dataset_for, model_inputs
    from deltaprop.teach.diagnose import dead_units

    X = model_inputs(net, dataset_for(net).X_train)
    assert dead["value"] == max(f for f in dead_units(net, X) if f is not None)


def test_the_python_api_speaks_keyword_arguments(runs):
    d = dp.diagnose(runs / "sgd_lr5_2")
    text = " ".join(f.suggestion for f in d.findings)
    assert "lr=0.5" in text and "--lr" not in text


# -- the monitor -------------------------------------------------------------------------------------------

def test_dead_unit_monitor_counts_the_whole_epoch_not_the_last_batch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    net = dp.Network.from_sizes([3, 16, 2], seed=0)

    class Record(Callback):
        def __init__(self):
            self.A = []

        def on_batch_end(self, trainer, batch, cost):
            self.A.append(trainer.net.layers[0].A.copy())

    rec = Record()
    h = dp.fit(net, X, (X[:, 0] > 0).astype(int), epochs=1, batch_size=39, lr=0.01,
               callbacks=[DeadUnitMonitor(), rec], seed=0)
    expected = float(np.mean(np.all(np.vstack(rec.A) <= 0, axis=0)))
    last_batch_only = float(np.mean(np.all(rec.A[-1] <= 0, axis=0)))
    assert h.epochs[0]["dead_fraction"] == [expected, None]
    assert expected < last_batch_only  # the last batch, one row, leaves idle units the epoch used
    tanh = dp.Network.from_sizes([3, 6, 2], hidden="tanh", seed=0)
    h = dp.fit(tanh, X, (X[:, 0] > 0).astype(int), epochs=1, callbacks=[DeadUnitMonitor()])
    assert "dead_fraction" not in h.epochs[0]


# -- never crash on the runs diagnose exists for -------------------------------------------------------------

def test_a_120_layer_sigmoid_run_whose_first_gradient_underflows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8))
    net = dp.Network.from_sizes([8] + [8] * 119 + [2], hidden="sigmoid", seed=0)
    h = dp.fit(net, X, (X[:, 0] > 0).astype(int), epochs=2, lr=0.1)
    assert h.epochs[-1]["dW_norm"][0] == 0.0  # underflow: the case that raised "math domain error"
    assert dp.diagnose(h).findings  # without the network: no activation to name, still no crash
    d = dp.diagnose(h, net=net)
    zero = next(f for f in d.findings if f.code == "zero_gradients")
    assert zero.layer == 1 and "underflow" in zero.evidence
    d.to_text(), d.to_json(), d.to_markdown()


@pytest.mark.parametrize("content", [
    "", "epoch,loss\n", "epoch,loss\n1,2.3,9,9\n2,abc\n", "epoch,loss,dW_norm_1,dW_norm_2\n1,nan,0,0\n2,inf,,x\n",
    "a,b\n1,2\n", b"\x00\xff\xfe garbage",
])
def test_malformed_history_files_give_a_diagnosis_or_a_clear_error(tmp_path, content):
    path = tmp_path / "history.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    try:
        d = dp.diagnose(tmp_path)
    except dp.DataError as err:
        assert "history" in str(err) or "CSV" in str(err)
        return
    d.to_text(), d.to_json()
    if d.n_epochs == 0:
        assert not d.complete and "could not run" in " ".join(d.to_text().split())


@pytest.mark.parametrize("content", ['[1, 2]', '{"epochs": "x"}', '{"epochs": [{"loss": "a", "dW_norm": [0, "b"]}]}'])
def test_malformed_history_json(tmp_path, content):
    (tmp_path / "history.json").write_text(content)
    try:
        dp.diagnose(tmp_path).to_text()
    except dp.DataError as err:
        assert "history" in str(err) or "epochs" in str(err)


def test_no_clean_bill_unless_every_check_ran():
    rows = [{"loss": v} for v in (1.0, 0.4, 0.39, 0.39)]  # a bare History: no gradients, no accuracy
    d = dp.diagnose(rows)
    assert d.ok and not d.complete
    assert "not a clean bill of health" in " ".join(d.to_text().split())
    skipped = [c.name for c in d.checks if not c.ran]
    assert "dead_relu" in skipped and "learned_nothing" in skipped


def test_vanishing_gradients_name_the_networks_own_activation():
    rows = [{"epoch": e + 1, "loss": 2.3 - 0.01 * e, "dW_norm": [1e-6 * (e + 1), 1e-3, 0.5]} for e in range(6)]
    tanh = dp.diagnose(rows, net=dp.Network.from_sizes([4, 8, 8, 3], hidden="tanh"))
    (v,) = [f for f in tanh.findings if f.code == "vanishing_gradients"]
    assert "tanh's g'" in v.evidence and "sigmoid" not in v.evidence and "tanh (" not in v.suggestion
    assert "hidden='relu'" in v.suggestion
    sigmoid = dp.diagnose(rows, net=dp.Network.from_sizes([4, 8, 8, 3], hidden="sigmoid"), syntax="command")
    (v,) = [f for f in sigmoid.findings if f.code == "vanishing_gradients"]
    assert "at most 1/4" in v.evidence and "--activation relu" in v.suggestion and v.layer == 1


def test_overfitting_needs_a_training_loss_below_chance(tmp_path):
    # The tanh run: training loss 76.8 against chance 2.30, accuracy 11 %: not memorization.
    rows = [{"epoch": e + 1, "loss": 76.8 + (e % 2), "accuracy": 0.11, "val_loss": 50 + e, "val_accuracy": 0.1}
            for e in range(8)]
    net = dp.Network.from_sizes([4, 8, 10], hidden="tanh")
    d = dp.diagnose(rows, net=net)
    assert "overfitting" not in d and "learned_nothing" in d
    note = next(c.note for c in d.checks if c.name == "overfitting")
    assert "not well below" in note


# -- trace and gradcheck: one pass rule ------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("depth", [3, 6, 10])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_trace_passes_correct_deep_smooth_networks(activation, depth, seed):
    sizes = [4] + [8] * (depth - 1) + [3]
    out = io.StringIO()
    args = ["trace", "--layers", ",".join(map(str, sizes)), "--activation", activation, "-m", "2",
            "--seed", str(seed), "--format", "json"]
    assert cli_main(args, stdout=out) == 0
    check = json.loads(out.getvalue())["gradient_check"]
    assert check["ok"], check
    assert "1e-07" in check["rule"] and "rounding noise" in check["rule"]
    net = dp.Network.from_sizes(sizes, hidden=activation, seed=seed, dtype="float64")
    X, y = random_batch(net, 2, seed=seed)
    assert dp.gradcheck(net, X, y).ok  # gradcheck agrees


def test_trace_fails_a_planted_wrong_gradient_with_a_hint_that_fits(monkeypatch):
    from deltaprop.activations import Sigmoid

    def wrong(self, dA, Z, A):  # the slip: g'(z) taken as A instead of A(1 − A)
        dA *= A
        return dA

    monkeypatch.setattr(Sigmoid, "backward", wrong)
    t = dp.trace(dp.Network.from_sizes([4, 8, 8, 3], hidden="sigmoid", seed=0), *_batch(4))
    assert not t.ok
    text = t.to_text()
    verdict = " ".join(text.split("Check failed")[1].split())
    assert "ReLU" not in verdict and "straddle" not in verdict and "smooth" in verdict
    assert not t.to_dict()["gradient_check"]["ok"]


def test_kink_hint_only_for_relu_networks():
    net = dp.Network.from_sizes([3, 4, 2], hidden="relu", seed=0, dtype="float64")
    X = np.zeros((2, 3))
    net.layers[0].b[:] = 1e-7  # every pre-activation sits on the kink
    rep = dp.gradcheck(net, X, np.array([0, 1]))
    assert rep.near_kink > 0
    from deltaprop.gradcheck import failure_hint

    assert "kink" in failure_hint(net, 3)
    smooth = dp.Network.from_sizes([3, 4, 2], hidden="tanh", seed=0)
    assert "kink" not in failure_hint(smooth, 3) and "ReLU" not in failure_hint(smooth, 3)


def _batch(m):
    rng = np.random.default_rng(5)
    return rng.normal(size=(m, 4)), rng.integers(0, 3, size=m)


def test_exploding_gradients_and_a_loss_blown_up_by_the_weights_not_the_learning_rate():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8))
    net = dp.Network.from_sizes([8] + [16] * 9 + [2], hidden="leaky_relu", seed=0)
    for layer in net.layers[:-1]:
        layer.W *= 4.0  # far above He's scale: every layer multiplies the signal and δ by about 4·√2
    h = dp.fit(net, X, (X[:, 0] > 0).astype(int), epochs=3, lr=1e-6)
    d = dp.diagnose(h, net=net, optimizer="sgd")
    assert "exploding_gradients" in d and "loss_exploded" in d
    assert "lr_too_high" not in d  # α = 1e-6 is not what blew the loss up
    exploded = next(f for f in d.findings if f.code == "loss_exploded")
    assert "started too large" in exploded.evidence and "init='glorot'" in exploded.suggestion


def test_loss_rose_and_stalled_from_the_loss_curve():
    rose = dp.diagnose([{"epoch": e + 1, "loss": v} for e, v in enumerate([0.7, 0.6, 0.65, 0.8, 0.9])])
    assert "loss_rose" in rose and "stalled" not in rose
    flat = dp.diagnose([{"epoch": e + 1, "loss": 2.30 - 0.001 * e} for e in range(6)])
    assert "stalled" in flat and "loss_rose" not in flat
    change = next(f for f in flat.findings if f.code == "stalled").value
    assert change == pytest.approx((2.30 - 2.295) / 2.30)


def test_a_run_that_diverged_in_its_first_epoch_is_read_from_what_the_command_left(tmp_path):
    out = tmp_path / "run"
    proc = run("train", "--layers", "64,64", "--optimizer", "momentum", "--lr", "500", "--epochs", "2",
               "--out", out, "--no-plots", "-q", timeout=600)
    assert proc.returncode in (2, 4), proc.stderr  # 4: diverged; 2 while an empty history cannot be written
    d = _diagnose_json(out)
    codes = [f["code"] for f in d["findings"]]
    assert "diverged" in codes and "lr_too_high" in codes, d
    assert any("--lr 50" in f["suggestion"] for f in d["findings"])


def test_underfitting_reads_a_slow_steady_fall_far_above_a_fitted_loss():
    # A loss that falls like iris's at Adam's default 30 epochs: the last 6 epochs bring only 2 % of its whole
    # fall, yet 14 % of its value, and it ends at 17 % of the chance loss ln 3: still learning.
    net = dp.Network.from_sizes([4, 8, 3], seed=0)

    def rows(scale, val=None):
        return [{"epoch": e, "loss": scale * e ** -0.57, "accuracy": 0.95,
                 **({"val_loss": val(e)} if val else {})} for e in range(1, 31)]

    d = dp.diagnose(rows(1.3), net=net, syntax="command")
    (f,) = [f for f in d.findings if f.code == "underfitting"]
    assert "fell by 14% of its final value" in f.evidence and "17% of the chance loss (ln 3" in f.evidence, f.evidence
    assert f.suggestion == "train longer (`--epochs 60`)."
    assert "in the last 6 epochs" in f.evidence
    (short,) = [f for f in dp.diagnose(rows(1.3)[:5], net=net).findings if f.code == "underfitting"]
    assert "in the last epoch" in short.evidence and "last 1 epoch" not in short.evidence, short.evidence
    assert "underfitting" in dp.diagnose(rows(1.3, val=lambda e: 0.8 * e ** -0.57), net=net)
    # The same fall ending below a tenth of the chance loss is a fitted network; a validation loss that
    # rose over the last epochs is no sign that more epochs help.
    assert "underfitting" not in dp.diagnose(rows(0.6), net=net)
    assert "underfitting" not in dp.diagnose(rows(1.3, val=lambda e: 0.3 + 0.002 * e), net=net)


def test_a_network_that_misses_a_tenth_of_its_training_rows_is_not_called_memorizing():
    # iris, seed 1, 30 epochs: the validation loss (12 rows) rose 6 % after epoch 10 while the training
    # accuracy was 0.89; "overfitting" beside "underfitting" told the reader both to stop and to go on.
    net = dp.Network.from_sizes([4, 8, 3], seed=0)

    def rows(accuracy):
        return [{"epoch": e, "loss": 1.3 * e ** -0.57, "accuracy": accuracy,
                 "val_loss": 0.69 + (0.004 * (e - 10) if e > 10 else 0.05 * (10 - e))} for e in range(1, 31)]

    low = dp.diagnose(rows(0.89), net=net)
    assert "overfitting" not in low and "underfitting" in low
    (check,) = [c for c in low.checks if c.name == "overfitting"]
    assert check.ran and "training accuracy (89.0%) is below 90%" in check.note
    assert "overfitting" in dp.diagnose(rows(0.99), net=net)


# -- verdicts weighed against the few rows of small data sets ------------------------------------------------

@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    """scikit-learn's bundled small data sets written as a user writes them (``frame.to_csv(path,
    index=False)``), trained by the command: iris, wine and breast cancer (10 % of their training rows,
    12 to 40, held out for validation), diabetes as a regression, and the textbook overfitting run."""
    from sklearn import datasets

    root = tmp_path_factory.mktemp("small")
    csvs = {}
    for name in ("iris", "wine", "breast_cancer", "diabetes"):
        csvs[name] = root / f"{name}.csv"
        getattr(datasets, f"load_{name}")(as_frame=True).frame.to_csv(csvs[name], index=False)
    jobs = {
        "iris_s1_e200": f"--data {csvs['iris']} --epochs 200 --seed 1",
        "iris_s1_e60": f"--data {csvs['iris']} --epochs 60 --seed 1",
        "iris_s2_e200": f"--data {csvs['iris']} --epochs 200 --seed 2",
        **{f"{name}_s{seed}": f"--data {csvs[name]} --seed {seed}" for name in ("wine", "breast_cancer")
           for seed in SEEDS},
        **{f"diabetes_e{e}": f"--data {csvs['diabetes']} --target target --task regression --epochs {e} "
                             "--seed 0" for e in (3, 30, 300)},
        "wide_s1": RUNS["wide_on_few_rows"][0] + " --seed 1",
    }

    def train(name):
        quiet = [] if name in ("wide_s1", "diabetes_e3", "iris_s1_e200") else ["-q"]
        proc = run("train", *jobs[name].split(), "--out", root / name, "--no-plots", *quiet, timeout=600)
        return name, proc

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        procs = dict(pool.map(train, jobs))
    for name, proc in procs.items():
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
    return root, procs


def _history(run_dir):
    rows = list(csv.DictReader(open(run_dir / "history.csv")))
    keys = ["loss", "val_loss", "val_loss_se"] + (["val_accuracy"] if "val_accuracy" in rows[0] else [])
    return {k: np.array([float(r[k]) for r in rows]) for k in keys}


def _check(d, name):
    (c,) = [c for c in d["checks"] if c["name"] == name]
    return c


def test_overfitting_on_12_validation_rows_is_weak_evidence_not_a_finding(small_runs):
    # iris, seed 1, 200 epochs: the validation loss rose from 0.691 (epoch 10) to 0.848 while the
    # validation accuracy went from 66.7 % to 91.7 % and the test accuracy is 0.96. One of the 12 rows
    # became confidently wrong: the mean moved by that row's loss ÷ 12, about 1 standard error.
    root, procs = small_runs
    for name in ("iris_s1_e200", "iris_s1_e60", "iris_s2_e200"):
        metrics = json.loads((root / name / "metrics.json").read_text())
        assert metrics["data"]["validation_rows"] == 12
        h = _history(root / name)
        best = int(np.argmin(h["val_loss"]))
        assert h["val_loss"][-1] > 1.05 * h["val_loss"][best] and h["val_loss"].size - 1 - best >= 3  # rose
        z = (h["val_loss"][-1] - h["loss"][-1]) / h["val_loss_se"][-1]
        assert z < 2, (name, z)
        d = _diagnose_json(root / name)
        assert "overfitting" not in {f["code"] for f in d["findings"]}, (name, d["findings"])
        note = _check(d, "overfitting")["note"]
        assert note.startswith("weak evidence") and "12 validation rows" in note
        assert f"{z:.1f} standard errors" in note
        assert "--val-fraction 0.2" in note
    text = " ".join(run("diagnose", root / "iris_s1_e200", check=0).stdout.split())
    assert "Weak evidence, too little to report: overfitting" in text and "66.7% → 91.7%" in text
    assert "overfitting" not in procs["iris_s1_e200"].stdout  # the end of `train` says nothing of it either
    latex = dp.diagnose(root / "iris_s1_e200").to_latex()
    assert "s/$\\surd$n" in latex and "?" not in latex  # no character the LaTeX rendering cannot spell


def test_the_textbook_overfitting_run_stays_flagged_with_its_figures(small_runs):
    # 512 hidden units on 45 digits rows, seed 1: the validation loss rose 1.22 → 2.07 (40 rows) while the
    # training loss fell to about 5e-5: 2.7 standard errors of the validation mean above it. Its validation
    # accuracy rose (67.5 % → 77.5 %): stopping early would keep the lower accuracy, and the advice says so.
    root, procs = small_runs
    h = _history(root / "wide_s1")
    z = (h["val_loss"][-1] - h["loss"][-1]) / h["val_loss_se"][-1]
    assert z >= 2
    d = _diagnose_json(root / "wide_s1")
    (f,) = [f for f in d["findings"] if f["code"] == "overfitting"]
    assert "40 validation rows" in f["evidence"] and f"{z:.1f} standard errors above" in f["evidence"]
    best = int(np.argmin(h["val_loss"]))
    assert h["val_accuracy"][-1] > h["val_accuracy"][best]
    assert f"{h['val_accuracy'][best]:.1%} → {h['val_accuracy'][-1]:.1%}" in f["evidence"]
    assert f["suggestion"].startswith("add L2 (`--l2 0.1`")
    assert f"keep epoch {best + 1}'s weights" in f["suggestion"]
    line = [ln for ln in procs["wide_s1"].stdout.splitlines() if ln.startswith("overfitting")]
    assert line and f"lowest at epoch {best + 1}" in line[0], procs["wide_s1"].stdout
    assert "--l2 0.1" in line[0]


@pytest.mark.parametrize("name", ["wine", "breast_cancer"])
def test_wine_and_breast_cancer_at_the_defaults_are_not_called_overfitting(small_runs, name):
    # At the default 30 epochs their validation loss ends at its lowest, except breast cancer with seed 0:
    # 0.167 (epoch 10) → 0.224 on 40 rows, the validation accuracy unchanged (97.5 %), 1.0 standard error.
    root, _ = small_runs
    for seed in SEEDS:
        d = _diagnose_json(root / f"{name}_s{seed}")
        assert d["ok"] and d["complete"], (name, seed, d["findings"])


def test_val_loss_se_is_the_standard_error_of_the_mean_over_the_validation_rows():
    rng = np.random.default_rng(0)
    X, Xv = rng.normal(size=(60, 4)), rng.normal(size=(17, 4))
    y, yv = (X[:, 0] > 0).astype(int), (Xv[:, 0] > 0).astype(int)
    net = dp.Network.from_sizes([4, 8, 2], seed=0, dtype="float64")
    h = dp.fit(net, X, y, epochs=3, validation_data=(Xv, yv))
    Z, A = net.logits(Xv)
    per_row = net.loss.rows(Z, A, np.eye(2)[yv])
    assert h.epochs[-1]["val_loss"] == pytest.approx(per_row.mean(), rel=1e-12)
    assert h.epochs[-1]["val_loss_se"] == pytest.approx(per_row.std(ddof=1) / np.sqrt(17), rel=1e-12)
    assert "val_loss_se" not in dp.fit(net, X, y, epochs=1).epochs[-1]  # no validation rows, no figure


def test_older_runs_without_the_noise_figures_are_still_read_and_say_so(small_runs, tmp_path):
    # A run written before history.csv had val_loss_se and metrics.json had validation_rows and baseline.
    import shutil

    root, _ = small_runs
    for name in ("wide_s1", "diabetes_e300"):
        old = tmp_path / name
        shutil.copytree(root / name, old)
        rows = list(csv.DictReader(open(old / "history.csv")))
        with open(old / "history.csv", "w", newline="") as f:
            w = csv.DictWriter(f, [k for k in rows[0] if k != "val_loss_se"], extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
        metrics = json.loads((old / "metrics.json").read_text())
        del metrics["data"]["validation_rows"], metrics["baseline"]
        (old / "metrics.json").write_text(json.dumps(metrics))
        d = _diagnose_json(old)
        (f,) = [f for f in d["findings"] if f["code"] == "overfitting"]
        assert "no val_loss_se" in f["evidence"] and "not weighed" in f["evidence"]
        share = f"{metrics['config']['val_fraction']:.0%} of {metrics['data']['train_rows']} training rows"
        assert share in f["evidence"]
    note = _check(_diagnose_json(tmp_path / "diabetes_e300"), "underfitting")["note"]
    assert "does not record it" in note and "½·Var of the standardised target = 0.5" in note


# -- regression: R² against predicting the training mean ----------------------------------------------------

def test_regression_runs_are_read_against_the_loss_of_predicting_the_mean(small_runs):
    # diabetes as a CSV, ½·MSE of the standardised target: predicting the training mean costs ½·Var = 0.5.
    root, procs = small_runs
    for e in (3, 30, 300):
        metrics = json.loads((root / f"diabetes_e{e}" / "metrics.json").read_text())
        assert metrics["baseline"]["loss"] == pytest.approx(0.5, rel=1e-6)
        assert metrics["data"]["validation_rows"] == 31
    # 3 epochs: the loss still falls steeply and explains 16 % of the training rows' variance.
    d = _diagnose_json(root / "diabetes_e3")
    (f,) = [f for f in d["findings"] if f["code"] == "underfitting"]
    h = _history(root / "diabetes_e3")
    base = json.loads((root / "diabetes_e3" / "metrics.json").read_text())["baseline"]
    r2, r2v = 1 - h["loss"][-1] / base["loss"], 1 - h["val_loss"][-1] / base["val_loss"]
    assert r2 < 0.2 and f"R² {r2:.2f}, below 0.2" in f["evidence"]
    assert f"{r2:.2f} on the training rows, {r2v:.2f} on the validation rows" in f["evidence"]
    assert "still falling" in f["evidence"] and "--epochs" in f["suggestion"]
    assert "?" not in dp.diagnose(root / "diabetes_e3").to_latex()  # ½·Var, R²
    assert procs["diabetes_e3"].stdout.count("underfitting (the network can still learn): train longer") == 1
    # 30 epochs: no finding; the check says how much of the variance the network explains.
    d = _diagnose_json(root / "diabetes_e30")
    assert d["ok"] and d["complete"], d["findings"]  # every check ran: the regression has its baseline
    h = _history(root / "diabetes_e30")
    assert f"{1 - h['loss'][-1] / 0.5:.2f} on the training rows" in _check(d, "underfitting")["note"]
    # 300 epochs: the training loss near 0, the validation loss far above it (31 rows): memorization.
    d = _diagnose_json(root / "diabetes_e300")
    assert [f["code"] for f in d["findings"]] == ["overfitting"]
    assert "31 validation rows" in d["findings"][0]["evidence"]


def test_mean_baseline_is_the_loss_of_predicting_the_training_mean():
    from deltaprop.teach.diagnose import mean_baseline
    from deltaprop.train import Trainer, TrainOptions

    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 3))
    y = 40 + 10 * X[:, 0] + rng.normal(size=80)
    net = dp.Network.from_sizes([3, 8, 1], output="identity", seed=0, dtype="float64")
    trainer = Trainer(net, X, y, TrainOptions(epochs=2, validation_fraction=0.25, seed=0))
    base = mean_baseline(trainer)
    fit_y, val_y = trainer.Y[:, 0], trainer.val[1][:, 0]  # the standardised targets the loss sees
    assert base["loss"] == pytest.approx(0.5 * np.mean((fit_y - fit_y.mean()) ** 2), rel=1e-12)
    assert base["loss"] == pytest.approx(0.5, rel=1e-12)
    assert base["val_loss"] == pytest.approx(0.5 * np.mean((val_y - fit_y.mean()) ** 2), rel=1e-12)
    trainer.run()
    assert "learned_nothing" in dp.diagnose(trainer)  # two steps of Adam at 0.001: R² ≤ 0.05, rightly
    trainer = Trainer(net, X, y, TrainOptions(epochs=100, lr=0.01, validation_fraction=0.25, seed=0))
    h = trainer.run()
    d = dp.diagnose(trainer)
    assert d.ok, d.findings
    r2 = 1 - h.epochs[-1]["loss"] / base["loss"]
    assert r2 > 0.9 and f"{r2:.2f} on the training rows" in _check(d.to_dict(), "underfitting")["note"]
    assert mean_baseline(Trainer(dp.Network.from_sizes([3, 4, 2], seed=0), X, (y > 40).astype(int))) is None


def test_a_regression_that_explains_nothing_learned_nothing():
    # Handmade: the loss stays at the loss of predicting the mean (½ on the standardised target).
    net = dp.Network.from_sizes([4, 8, 1], output="identity", seed=0)
    net.meta["target_scaling"] = {"mean": [0.0], "std": [1.0]}
    rows = [{"epoch": e, "loss": 0.5 - 0.001 * e, "val_loss": 0.51} for e in range(1, 11)]
    d = dp.diagnose(rows, net=net)
    assert "learned_nothing" in d and "underfitting" not in d
    assert "R² 0.02 on the training rows" in d.findings[0].evidence
    fitted = dp.diagnose([{"epoch": e, "loss": 0.5 / e, "val_loss": 0.3 + 0.2 / e} for e in range(1, 11)],
                         net=net)
    assert "learned_nothing" not in fitted
