"""``deltaprop search``: a grid or random search over train options with k-fold cross-validation, on
local processes or a Dask cluster (:mod:`deltaprop.scale.search`) → search.csv, search.png, and the best
combination retrained on all the training rows by ``deltaprop train`` in the same directory."""

from __future__ import annotations

import csv
import math
import os
import shlex
import sys
import time
from pathlib import Path

from deltaprop.cli.args import Formatter, fraction, positive_int, train_option
from deltaprop.cli.common import console, error, live_bar, out, seconds
from deltaprop.errors import ConfigError
from deltaprop.io.files import shown

SEARCH_EXAMPLES = """\
examples:
  deltaprop search --data digits --grid 'layers=32|64,32' --grid 'lr=0.01|0.001' --cv 3 --epochs 20
  deltaprop search --random 20 --grid 'lr=1e-4..1e-1:log' --grid 'l2=1e-5..1:log' --grid 'layers=64|128,64'
  deltaprop search --scheduler tcp://10.0.0.5:8786 --grid 'batch_size=32|64|128' --out runs/search
      every fit runs on that Dask cluster (start it with `dask scheduler`, `dask worker tcp://10.0.0.5:8786`)
"""

# Train options a search passes on, as (dest, flag).
_FLAGS = {"layers": "--layers", "activation": "--activation", "optimizer": "--optimizer", "schedule": "--schedule",
          "init": "--init", "scale": "--scale", "dtype": "--dtype", "lr": "--lr", "momentum": "--momentum",
          "l2": "--l2", "epochs": "--epochs", "batch_size": "--batch-size", "seed": "--seed",
          "class_weight": "--class-weight"}

SEARCH_FILE = "search.csv"
PLOT_FILE = "search.png"


def register(sub) -> None:
    s = sub.add_parser("search", help="grid or random search with k-fold cross-validation, locally or on a Dask "
                                      "cluster; retrains the best", formatter_class=Formatter,
                       description="Train every combination of the options given with --grid (or --random N of "
                                   "them) on k folds of the training rows, score each on the fold it did not see "
                                   "(accuracy for classes, R² for numbers), write search.csv and search.png, then "
                                   "retrain the best combination on all the training rows as `deltaprop train` "
                                   "would, in the same directory. Ctrl-C stops and keeps the rows done.",
                       epilog=SEARCH_EXAMPLES)
    g = s.add_argument_group("search")
    g.add_argument("--grid", action="append", default=[], metavar="NAME=V1|V2|...",
                   help="an option to vary and its values, separated by | (layers: 'layers=32|64,32'); with "
                        "--random, numbers may be ranges LOW..HIGH or LOW..HIGH:log. Options: " + ", ".join(_FLAGS))
    g.add_argument("--random", type=positive_int, metavar="N", help="sample N combinations instead of the full grid")
    g.add_argument("--cv", type=positive_int, default=3, metavar="K", help="folds of cross-validation")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the fits on this Dask cluster (default: local worker processes)")
    g.add_argument("--workers", type=positive_int, help="local worker processes (default: one per core)")
    g.add_argument("--threads", type=positive_int, default=1, help="BLAS threads per fit")
    g = s.add_argument_group("data (as for train)")
    g.add_argument("--data", default="digits", help="a data spec, as for deltaprop train (rows are held in memory)")
    g.add_argument("--target", help="the label column of a CSV file, or with --data X.npy the .npy of targets")
    g.add_argument("--task", choices=("classification", "regression"))
    train_option(g, "drop")
    train_option(g, "delimiter")
    g.add_argument("--test-fraction", type=fraction, default=0.3, help="rows held out for the final test")
    g = s.add_argument_group("train options held fixed (unless in --grid)")
    for name in ("layers", "activation", "init", "dtype"):
        train_option(g, name)
    train_option(g, "scale", help="input scaling, fitted on each fold's training rows (default: the data set's)")
    for name in ("optimizer", "lr", "momentum", "schedule", "epochs", "batch_size", "l2", "class_weight"):
        train_option(g, name)
    train_option(g, "seed", help="seed of the split, the folds, the draws, the weights")
    g = s.add_argument_group("output")
    g.add_argument("--out", metavar="DIR", help="directory (default: runs/<date>_<time>)")
    g.add_argument("--no-plots", action="store_true")
    g.add_argument("--no-retrain", action="store_true", help="stop after search.csv")
    g.add_argument("--overwrite", action="store_true",
                   help="--out may hold an earlier search or run: its files are removed first")
    g.add_argument("--quiet", "-q", action="store_true")
    s.set_defaults(handler=cmd_search)


def _combinations(args):
    """(the searched option names, one dict of all train options per combination)."""
    from deltaprop.scale.search import Space

    if not args.grid:
        raise ConfigError("nothing to search: no --grid option", "for example --grid 'lr=0.01|0.001' "
                          "--grid 'layers=32|64,32'")
    space = Space.parse(args.grid)
    combos = space.sample(args.random, seed=args.seed) if args.random else space.grid()
    base = {name: getattr(args, name) for name in _FLAGS}
    base["layers"] = tuple(base["layers"])
    return list(space.options), [{**base, **c} for c in combos]


def _train_argv(args, options: dict, run_dir) -> list[str]:
    """The ``deltaprop train`` command line that retrains ``options`` on all the training rows."""
    argv = ["train", "--data", str(args.data), "--test-fraction", repr(args.test_fraction), "--val-fraction", "0",
            "--out", str(run_dir)]
    for name, flag in (("target", "--target"), ("task", "--task"), ("drop", "--drop"), ("delimiter", "--delimiter")):
        if getattr(args, name) is not None:
            argv += [flag, str(getattr(args, name))]
    for name, flag in _FLAGS.items():
        value = options.get(name)
        if value is None:
            continue
        argv += [flag, ",".join(map(str, value)) if name == "layers" else str(value)]
    if args.no_plots:
        argv.append("--no-plots")
    if args.quiet:
        argv.append("--quiet")
    return argv


class _FitProgress:
    """A rich bar over the fits on a terminal; a line per tenth of the fits otherwise (stderr)."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar, self.done, self.total = quiet, None, 0, 0
        self.console = console(stderr=True)
        self.started = time.perf_counter()

    def start(self, total: int, where: str) -> None:
        self.total = total
        if self.quiet:
            return
        sys.stderr.write(f"{total} fits on {where}\n")
        if self.console is not None and self.console.is_terminal:
            self.bar, self.task = live_bar(self.console, "fits", total)

    def fit_done(self, best: float | None) -> None:
        self.done += 1
        info = "" if best is None else f"best mean score so far {best:.4f}"
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done, info=info)
        elif not self.quiet and (self.done % max(1, self.total // 10) == 0 or self.done == self.total):
            sys.stderr.write(f"fits {self.done}/{self.total}  {info}  ({seconds(time.perf_counter() - self.started)})\n")
            sys.stderr.flush()

    def end(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def write_search_csv(rows: list[dict], names: list[str], k: int, path) -> Path:
    """search.csv: one row per combination, best first; written atomically."""
    from deltaprop.cli.report import _atomic_write

    header = [f"param_{n}" for n in names] + ["mean_score", "std_score"] + [f"score_fold{f}" for f in range(1, k + 1)] \
        + ["fit_seconds", "worker", "rank", "error"]

    def write(f):
        w = csv.DictWriter(f, fieldnames=header, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({key: (repr(v) if isinstance(v, float) else v) for key, v in row.items()})

    return _atomic_write(path, write, binary=False)


def plot_search(rows: list[dict], names: list[str], score_name: str, path) -> Path:
    """Mean score (± the spread over folds) against each searched option: one panel per option,
    log axes for positive numbers spread over more than a decade, values in order otherwise."""
    from deltaprop.cli.report import _figure, _save

    fig = _figure(4.0 * len(names), 3.4)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        values = [r[f"param_{name}"] for r in rows]
        mean = [r["mean_score"] for r in rows]
        std = [r["std_score"] for r in rows]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric:
            x = [float(v) for v in values]
            if min(x) > 0 and max(x) / min(x) >= 10:
                ax.set_xscale("log")
        else:
            labels = list(dict.fromkeys(str(v) for v in values))
            x = [labels.index(str(v)) for v in values]
            ax.set_xticks(range(len(labels)), labels, rotation=30 if max(map(len, labels)) > 6 else 0)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.errorbar(x, mean, yerr=std, fmt="o", alpha=0.75, capsize=3, label="a combination (± std over folds)")
        ax.plot([x[0]], [mean[0]], marker="*", markersize=14, color="C3", linestyle="none", label="best")
        ax.set_xlabel(name)
        ax.set_ylabel(f"mean {score_name} over folds")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    best = rows[0]
    fig.suptitle("search: best " + ", ".join(f"{n}={best[f'param_{n}']}" for n in names)
                 + f" ({score_name} {best['mean_score']:.4f})", fontsize=10)
    return _save(fig, path)


def cmd_search(args) -> int:
    from deltaprop.cli.train import _claim, _drop_unstarted, _run_dir
    from deltaprop.io.datasets import parse_delimiter, resolve
    from deltaprop.scale import search as S

    started = time.perf_counter()
    names, combos = _combinations(args)
    data = resolve(args.data, test_fraction=args.test_fraction, seed=args.seed, target=args.target, task=args.task,
                   in_memory=True, drop=args.drop,
                   delimiter=parse_delimiter(args.delimiter) if args.delimiter else None)
    for note in data.notes:  # what the reader decided on its own is never silent
        sys.stderr.write(f"deltaprop: note: {note}\n")
    classification = data.task == "classification"
    folds = S.kfold(data.y_train, args.cv, seed=args.seed, stratify=classification)
    shared = S.SearchData(data.X_train, data.y_train, folds, data.class_names, data.scaling)
    fresh = not args.out or not os.path.lexists(os.path.expanduser(args.out))
    run_dir = _run_dir(args)
    # Before any fit: the directory is this search's own (no earlier search's table beside another model).
    earlier = [name for name in (SEARCH_FILE, PLOT_FILE) if os.path.lexists(run_dir / name)]
    if earlier and not args.overwrite:
        raise ConfigError(f"{shown(run_dir)} already holds a search ({', '.join(earlier)})",
                          "choose another --out, or pass --overwrite to replace it")
    _claim(run_dir, args)  # a run's files: refused, or removed with --overwrite
    for name in earlier:
        os.unlink(run_dir / name)
    score_name = "accuracy" if classification else "R²"
    if not args.quiet:
        sys.stderr.write(f"deltaprop search: {data!r}\n{len(combos)} combination{'s' * (len(combos) != 1)} of "
                         f"{', '.join(names)} × {args.cv} folds, scored by {score_name} -> {run_dir}\n")

    progress = _FitProgress(args.quiet)
    results = [[None] * args.cv for _ in combos]
    best = [None]

    def collect(i, result):
        results[i][result["fold"]] = result
        if all(r is not None for r in results[i]):  # a combination is complete: search.csv keeps it
            rows = S.result_rows(combos, results, names)
            write_search_csv(rows, names, args.cv, run_dir / SEARCH_FILE)
            best[0] = rows[0]["mean_score"]
        progress.fit_done(best[0])

    try:
        S.run(shared, combos, scheduler=args.scheduler, workers=args.workers, threads=args.threads,
              on_result=collect, on_start=progress.start)
    except KeyboardInterrupt:
        progress.end()
        rows = S.result_rows(combos, results, names)
        write_search_csv(rows, names, args.cv, run_dir / SEARCH_FILE)
        error(f"interrupted: {len(rows)} of {len(combos)} combinations finished, kept in {run_dir / SEARCH_FILE}")
        return 130
    except BaseException:  # no search ran (an unreachable scheduler, say): no empty run directory is left
        if fresh and not os.path.lexists(run_dir / SEARCH_FILE):
            _drop_unstarted(run_dir)
        raise
    finally:
        progress.end()
    rows = S.result_rows(combos, results, names)
    write_search_csv(rows, names, args.cv, run_dir / SEARCH_FILE)
    files = [SEARCH_FILE]
    if not args.no_plots and rows and not math.isnan(rows[0]["mean_score"]):
        plot_search([r for r in rows if not math.isnan(r["mean_score"])], names, score_name, run_dir / PLOT_FILE)
        files.append(PLOT_FILE)
    search_seconds = time.perf_counter() - started
    if not args.quiet:
        _print_table(rows, names, args.cv, score_name)
        out(f"{len(combos) * args.cv} fits in {seconds(search_seconds)}; wrote {run_dir}/{', '.join(files)}")
    top = rows[0]
    if math.isnan(top["mean_score"]):
        error("every combination failed; the first error: " + top["error"])
        return 4
    if args.no_retrain:
        return 0
    best_options = combos[top["combination"]]
    argv = _train_argv(args, best_options, run_dir)
    if not args.quiet:
        chosen = ", ".join(f"{n}={top['param_' + n]}" for n in names)
        out(f"best: {chosen} ({score_name} {top['mean_score']:.4f} "
            f"± {top['std_score']:.4f}); retraining on all {data.X_train.shape[0]} training rows:")
        out("  deltaprop " + shlex.join(argv))
    from deltaprop.cli.main import build_parser

    train_args = build_parser().parse_args(argv)
    train_args.argv = argv
    train_args.debug = args.debug
    train_args.notes_said = True  # the search said the reader's notes on this file: once is enough
    return train_args.handler(train_args)


def _print_table(rows, names, k, score_name) -> None:
    shown = rows[:10]
    width = {n: max(len(n), *(len(str(r[f"param_{n}"])) for r in shown)) for n in names}
    out()
    out("rank  " + "  ".join(n.ljust(width[n]) for n in names) + f"  mean {score_name}   ± std    s/fit  worker")
    for r in shown:
        score = "failed" if math.isnan(r["mean_score"]) else f"{r['mean_score']:.4f}"
        out(f"{r['rank']:>4}  " + "  ".join(str(r[f'param_{n}']).ljust(width[n]) for n in names)
            + f"  {score:>{len(score_name) + 5}}  {r['std_score']:.4f}  {r['fit_seconds']:5.2f}  {r['worker']}")
    if len(rows) > len(shown):
        out(f"... {len(rows) - len(shown)} more in {SEARCH_FILE}")
