"""``deltaprop search``: a grid or random search over train options with k-fold cross-validation, on
local processes or a Dask cluster (:mod:`deltaprop.scale.search`) → search.csv, search.png, and the best
combination retrained on all the training rows by ``deltaprop train`` in the same directory."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import shlex
import sys
import time
from pathlib import Path

from deltaprop.cli.args import Formatter, fraction, positive_int, train_option
from deltaprop.cli.common import console, error, live_bar, out, seconds
from deltaprop.errors import ConfigError, DeltapropError
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
RECORD_FILE = "search.json"  # the search's options, combinations and every fit done: what --resume reads
_MAX_RECORD = 50_000_000
# What --resume may change: where and how the fits run, and what is printed or written after them.
_RESUME_OPTIONS = ("resume", "workers", "scheduler", "threads", "quiet", "no_plots", "no_retrain", "debug")


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
    g.add_argument("--resume", metavar="DIR",
                   help="continue the search stopped in DIR (Ctrl-C, a lost cluster) with the options it was "
                        "started with: the combinations done are kept, the others are fitted, then the best is "
                        "retrained; the fits run where this command says (--workers, --scheduler, --threads), and "
                        "--quiet, --no-plots and --no-retrain may be added")
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
    if args.random and len(combos) < args.random:  # a small space: every draw beyond it repeats one
        sys.stderr.write(f"deltaprop: note: --random {args.random}: the search space holds only {len(combos)} "
                         f"distinct combination{'s' * (len(combos) != 1)}; each is trained once\n")
    base = {name: getattr(args, name) for name in _FLAGS}
    base["layers"] = tuple(base["layers"])
    return list(space.options), _without_unused_momentum([{**base, **c} for c in combos])


def _without_unused_momentum(combos: list[dict]) -> list[dict]:
    """The combinations with the momentum left out where their optimizer does not use it (Adam): the
    fits would not differ, and `deltaprop train` refuses --momentum with Adam when the best is retrained.
    Combinations that then coincide are trained once; both are said."""
    from deltaprop.scale.search import MOMENTUM_OPTIMIZERS

    kept, seen, dropped = [], set(), set()
    for combo in combos:
        optimizer = str(combo.get("optimizer")).strip().lower()
        if combo.get("momentum") is not None and optimizer not in MOMENTUM_OPTIMIZERS:
            combo = {**combo, "momentum": None}
            dropped.add(optimizer)
        key = tuple(sorted((k, repr(v)) for k, v in combo.items()))
        if key not in seen:
            seen.add(key)
            kept.append(combo)
    if dropped:
        merged = len(combos) - len(kept)
        sys.stderr.write(f"deltaprop: note: {', '.join(sorted(dropped))} does not use a momentum: its combinations "
                         "train without one" + (f" ({merged} combination{'s' * (merged != 1)} that differed only in "
                                                "it trained once)" if merged else "") + "\n")
    return kept


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
    if _on_disk(args.data):  # the fits held the rows in memory and shuffled them one by one: so does this
        argv.append("--in-memory")
    if options.get("seed") != args.seed:  # a searched --seed: the test rows stay the search's (split by its seed)
        argv += ["--split-seed", str(args.seed)]
    if args.no_plots:
        argv.append("--no-plots")
    if args.quiet:
        argv.append("--quiet")
    return argv


def _on_disk(spec) -> bool:
    """True for .npy data, which `deltaprop train` reads by blocks from disk unless --in-memory."""
    from deltaprop.io.datasets import npy_dir_files

    path = Path(os.path.expanduser(str(spec)))
    if path.suffix.lower() == ".npy":
        return True
    try:
        return path.is_dir() and npy_dir_files(path) is not None
    except (DeltapropError, OSError):
        return False


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
    fig.suptitle("search: best " + ", ".join(f"{n}={_shown(best[f'param_{n}'])}" for n in names)
                 + f" ({score_name} {best['mean_score']:.4f})", fontsize=10)
    return _save(fig, path)


def _jsonable(value):
    """Combinations and results as JSON keeps them (tuples as lists, NaN as null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_record(run_dir: Path, record: dict, results: list) -> None:
    from deltaprop.cli.common import write_json

    write_json(run_dir / RECORD_FILE, {**record, "results": _jsonable(results)})


def _read_record(run_dir: Path) -> dict:
    """RUN_DIR/search.json, checked: the search's command line, combinations and fits done."""
    import json

    from deltaprop.errors import ModelFileError
    from deltaprop.io.files import open_regular

    path = run_dir / RECORD_FILE
    if not os.path.lexists(path):
        what = "a training run" if os.path.lexists(run_dir / "run.json") else "no search to continue"
        raise ConfigError(f"--resume: {shown(run_dir)} has no {RECORD_FILE}: it holds {what}",
                          "pass the --out directory of a `deltaprop search` that was stopped (a search started "
                          "before search.json existed cannot be continued)")
    with open_regular(path, "search record", ModelFileError) as f:
        raw = f.read(_MAX_RECORD + 1)
    damaged = f"{shown(path)} is damaged"
    try:
        if len(raw) > _MAX_RECORD:
            raise ValueError(f"over {_MAX_RECORD:,} bytes")
        record = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{damaged}: {str(exc)[:120]}", "start the search again (--overwrite)") from None
    ok = (isinstance(record, dict) and record.get("format") == "deltaprop-search"
          and isinstance(record.get("argv"), list) and all(isinstance(a, str) for a in record["argv"])
          and isinstance(record.get("combinations"), list) and isinstance(record.get("results"), list)
          and len(record["results"]) == len(record["combinations"]))
    if not ok:
        raise ModelFileError(f"{damaged}: it must hold the search's argv, combinations and results",
                             "start the search again (--overwrite)")
    return record


def _stored_results(record: dict, k: int, path) -> list:
    """The fits the record holds, each checked, as :func:`deltaprop.scale.search.fit_fold` returns them."""
    from deltaprop.errors import ModelFileError

    results = []
    for folds in record["results"]:
        if not isinstance(folds, list) or len(folds) != k:
            raise ModelFileError(f"{shown(path)} is damaged: a combination's results are not {k} folds",
                                 "start the search again (--overwrite)")
        row = []
        for f, r in enumerate(folds):
            if r is None:
                row.append(None)
                continue
            good = (isinstance(r, dict) and r.get("fold") == f and isinstance(r.get("worker"), str)
                    and isinstance(r.get("error"), str)
                    and all(r.get(key) is None or (isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool))
                            for key in ("score", "seconds")))
            if not good:
                raise ModelFileError(f"{shown(path)} is damaged: fold {f + 1} of a combination is not a fit's result",
                                     "start the search again (--overwrite)")
            row.append({"fold": f, "worker": r["worker"][:200], "error": r["error"][:2000],
                        "score": float("nan") if r.get("score") is None else float(r["score"]),
                        "seconds": float(r.get("seconds") or 0.0)})
        results.append(row)
    return results


def _given_search_options(argv) -> set:
    """The ``search`` options written on the command line ``argv`` (dest names), whatever their values."""
    import argparse

    parser = argparse.ArgumentParser(prog="deltaprop")
    parser.add_argument("--debug", action="store_true")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    search = sub.choices["search"]
    for action in search._actions:
        action.default = argparse.SUPPRESS
    search._defaults.clear()
    return set(vars(parser.parse_args(argv))) - {"command", "debug"}


def _resumed_search(args):
    """(the stopped search's arguments with --workers, --scheduler, --threads, --quiet, --no-plots and
    --no-retrain applied, its record) for ``search --resume DIR``."""
    from deltaprop.cli.main import build_parser

    run_dir = Path(os.path.expanduser(args.resume))
    if not run_dir.is_dir():
        raise ConfigError(f"--resume: no such directory: {shown(run_dir)}",
                          "pass the --out directory of a `deltaprop search` that was stopped")
    record = _read_record(run_dir)
    typed = _given_search_options(args.argv)
    given = typed - set(_RESUME_OPTIONS)
    if given:
        raise ConfigError(f"--resume continues the search with the options it was started with; it cannot change "
                          f"{', '.join('--' + k.replace('_', '-') for k in sorted(given))}",
                          "drop them (only --workers, --scheduler, --threads, --quiet, --no-plots and --no-retrain "
                          "go with --resume), or start a new search")
    try:
        stored = build_parser().parse_args(record["argv"])
    except SystemExit:
        raise ConfigError(f"--resume: the command line stored in {shown(run_dir / RECORD_FILE)} no longer parses",
                          "start the search again (--overwrite)") from None
    for name in _RESUME_OPTIONS:
        # Where the fits run is this command's to say, never the file's (a search.json from elsewhere must
        # not send the rows to its own --scheduler); what it prints and writes is kept unless said again.
        if name in typed or name in ("scheduler", "workers", "threads"):
            setattr(stored, name, getattr(args, name))
    if isinstance(record.get("data"), str):  # the data as an absolute path: any working directory resumes
        stored.data = record["data"]
    if isinstance(record.get("target"), str):
        stored.target = record["target"]
    stored.out, stored.overwrite, stored.resume = str(run_dir), False, str(run_dir)
    stored.argv, stored.debug = args.argv, args.debug
    return stored, record


def cmd_search(args) -> int:
    from deltaprop.cli.train import _claim, _drop_unstarted, _run_dir
    from deltaprop.io.datasets import absolute_spec, fingerprint, parse_delimiter, resolve
    from deltaprop.scale import search as S

    started = time.perf_counter()
    record = None
    if args.resume:
        args, record = _resumed_search(args)
    names, combos = _combinations(args)
    if record is not None and _jsonable(combos) != record["combinations"]:
        raise ConfigError(f"--resume: the combinations of {shown(Path(args.out) / RECORD_FILE)} are not the ones "
                          "its command line gives now (another deltaprop version?)", "start the search again "
                          "(--overwrite)")
    data_print = fingerprint(args.data)
    if record is not None and record.get("fingerprint") != _jsonable(data_print):
        from deltaprop.errors import DataError

        raise DataError(f"--resume: the data {shown(args.data)} changed since the search started (its size or "
                        "contents differ): the fits done were scored on other rows", "start the search again "
                        "(--overwrite)")
    data = resolve(args.data, test_fraction=args.test_fraction, seed=args.seed, target=args.target, task=args.task,
                   in_memory=True, drop=args.drop,
                   delimiter=parse_delimiter(args.delimiter) if args.delimiter else None)
    for note in data.notes:  # what the reader decided on its own is never silent
        sys.stderr.write(f"deltaprop: note: {note}\n")
    classification = data.task == "classification"
    folds = S.kfold(data.y_train, args.cv, seed=args.seed, stratify=classification)
    shared = S.SearchData(data.X_train, data.y_train, folds, data.class_names, data.scaling)
    S.check_combinations(shared, combos, names)  # a value no fit can train with: refused before any fit
    if args.scheduler:  # a cluster that cannot run the fits is found before the run directory is made
        S.check_scheduler(args.scheduler)
    fresh = not args.out or not os.path.lexists(os.path.expanduser(args.out))
    run_dir = _run_dir(args)
    resume = f"deltaprop search --resume {shlex.quote(str(run_dir))}"
    if record is not None:
        results = _stored_results(record, args.cv, run_dir / RECORD_FILE)
        if os.path.lexists(run_dir / "run.json"):  # the fits were all done: the retraining was stopped
            raise ConfigError(f"--resume: the search in {shown(run_dir)} is done, and its best combination's "
                              "retraining started", f"continue that with deltaprop train --resume {shlex.quote(str(run_dir))}")
    else:
        # Before any fit: the directory is this search's own (no earlier search's table beside another model).
        earlier = [name for name in (SEARCH_FILE, PLOT_FILE, RECORD_FILE) if os.path.lexists(run_dir / name)]
        if earlier and not args.overwrite:
            again = f"continue it with {resume}, " if RECORD_FILE in earlier else ""
            raise ConfigError(f"{shown(run_dir)} already holds a search ({', '.join(earlier)})",
                              f"{again}choose another --out, or pass --overwrite to replace it")
        _claim(run_dir, args)  # a run's files: refused, or removed with --overwrite
        for name in earlier:
            os.unlink(run_dir / name)
        results = [[None] * args.cv for _ in combos]
    record = {"format": "deltaprop-search", "argv": [str(a) for a in (record or {}).get("argv", args.argv)],
              "data": absolute_spec(args.data) if data_print is not None else None,
              "target": (os.path.abspath(os.path.expanduser(args.target))
                         if args.target and _on_disk(args.data) else None),  # --target y.npy: a path too
              "fingerprint": _jsonable(data_print), "names": names, "cv": args.cv,
              "combinations": _jsonable(combos)}
    _write_record(run_dir, record, results)  # from the start: a search stopped before its first row continues
    score_name = "accuracy" if classification else "R²"
    done = sum(r is not None for folds in results for r in folds)
    if not args.quiet:
        sys.stderr.write(f"deltaprop search: {data!r}\n{len(combos)} combination{'s' * (len(combos) != 1)} of "
                         f"{', '.join(names)} × {args.cv} folds, scored by {score_name} -> {run_dir}\n")
        if done:
            sys.stderr.write(f"resuming: {done} of {len(combos) * args.cv} fits were done\n")

    progress = _FitProgress(args.quiet)
    best = [None]

    def keep() -> list:
        """The rows of the combinations complete so far, written to search.csv and search.json."""
        rows = S.result_rows(combos, results, names)
        write_search_csv(rows, names, args.cv, run_dir / SEARCH_FILE)
        _write_record(run_dir, record, results)
        return rows

    def collect(i, result):
        results[i][result["fold"]] = result
        if all(r is not None for r in results[i]):  # a combination is complete: search.csv keeps it
            best[0] = keep()[0]["mean_score"]
        progress.fit_done(best[0])

    try:
        S.run(shared, combos, scheduler=args.scheduler, workers=args.workers, threads=args.threads,
              on_result=collect, on_start=progress.start, done=results)
    except KeyboardInterrupt:
        progress.end()
        rows = keep()
        error(f"interrupted: {len(rows)} of {len(combos)} combinations finished, kept in {run_dir / SEARCH_FILE}"
              f"\n  hint: continue with: {resume}")
        return 130
    except BaseException as exc:  # the cluster failed, or no search could run: the fits done are kept
        progress.end()
        if any(r is not None for folds in results for r in folds):
            rows = keep()
            if isinstance(exc, DeltapropError):
                exc.message += f"; {len(rows)} of {len(combos)} combinations finished, kept in {run_dir / SEARCH_FILE}"
                exc.hint += f"; then continue with: {resume}"
        elif fresh:  # nothing done (the workers cannot import deltaprop, say): no empty run directory is left
            with contextlib.suppress(OSError):
                os.unlink(run_dir / RECORD_FILE)
            _drop_unstarted(run_dir)
        raise
    finally:
        progress.end()
    rows = keep()
    files, problem = [SEARCH_FILE], None
    if not args.no_plots and rows and not math.isnan(rows[0]["mean_score"]):
        try:  # a plot that cannot be written (a full disk) costs neither the table nor the retraining
            plot_search([r for r in rows if not math.isnan(r["mean_score"])], names, score_name, run_dir / PLOT_FILE)
            files.append(PLOT_FILE)
        except (DeltapropError, OSError) as exc:
            problem = str(exc) if isinstance(exc, DeltapropError) else f"{PLOT_FILE}: {exc.strerror or exc}"
    search_seconds = time.perf_counter() - started
    if not args.quiet:
        _print_table(rows, names, args.cv, score_name)
        ran = len(combos) * args.cv - done
        out(f"{ran} fits in {seconds(search_seconds)}{f' ({done} done before)' if done else ''}; wrote "
            f"{run_dir}/{', '.join(files)}")
    if problem:
        error(problem)
    top = rows[0]
    if math.isnan(top["mean_score"]):
        error("every combination failed; the first error: " + top["error"])
        return 4
    if args.no_retrain:
        return 1 if problem else 0
    best_options = combos[top["combination"]]
    argv = _train_argv(args, best_options, run_dir)
    if not args.quiet:
        chosen = ", ".join(f"{n}={_shown(top['param_' + n])}" for n in names)
        out(f"best: {chosen} ({score_name} {top['mean_score']:.4f} "
            f"± {top['std_score']:.4f}); retraining on all {data.X_train.shape[0]} training rows:")
        out("  deltaprop " + shlex.join(argv))
    from deltaprop.cli.main import build_parser

    train_args = build_parser().parse_args(argv)
    train_args.argv = argv
    train_args.debug = args.debug
    train_args.notes_said = True  # the search said the reader's notes on this file: once is enough
    try:
        code = train_args.handler(train_args)
    except DeltapropError as exc:
        if not os.path.lexists(run_dir / "run.json"):  # refused before it started (a full disk, say)
            exc.hint = (exc.hint + "; " if exc.hint else "") + f"the search's results are kept: then {resume} " \
                "retrains its best"
        raise
    return code or (1 if problem else 0)


def _shown(value) -> str:
    """A searched value as a person reads it: a float to 6 significant digits (a random search's
    lr=0.014603771214247215 reads 0.0146038); search.csv and the retraining command keep every digit."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _print_table(rows, names, k, score_name) -> None:
    shown = rows[:10]
    width = {n: max(len(n), *(len(_shown(r[f"param_{n}"])) for r in shown)) for n in names}
    out()
    out("rank  " + "  ".join(n.ljust(width[n]) for n in names) + f"  mean {score_name}   ± std    s/fit  worker")
    for r in shown:
        score = "failed" if math.isnan(r["mean_score"]) else f"{r['mean_score']:.4f}"
        out(f"{r['rank']:>4}  " + "  ".join(_shown(r[f'param_{n}']).ljust(width[n]) for n in names)
            + f"  {score:>{len(score_name) + 5}}  {r['std_score']:.4f}  {r['fit_seconds']:5.2f}  {r['worker']}")
    if len(rows) > len(shown):
        out(f"... {len(rows) - len(shown)} more in {SEARCH_FILE}")
