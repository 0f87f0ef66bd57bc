"""``deltaprop evaluate``, ``predict`` and ``info``: what a saved model does on data, and what it is."""

from __future__ import annotations

import csv
import io
import json
import os
import sys

import numpy as np

from deltaprop.cli.args import Formatter
from deltaprop.cli.common import (
    MODEL_FILE,
    class_names,
    evaluation_data,
    finite_outputs,
    json_default,
    labels_for_model,
    load_model,
    metrics,
    model_inputs,
    out,
    print_class_table,
    target_name,
)
from deltaprop.errors import ConfigError, DataError, InputError
from deltaprop.io.files import atomic_write, csv_cell, shown

EVALUATE_EXAMPLES = """\
examples:
  deltaprop evaluate runs/latest/model.safetensors                  the test split of the training data
  deltaprop evaluate runs/latest/model.safetensors --data new.csv   every row of new.csv
  deltaprop evaluate runs/latest/model.safetensors --json | head
"""

PREDICT_EXAMPLES = """\
examples:
  deltaprop predict runs/latest/model.safetensors inputs.csv -o predictions.csv
  deltaprop predict runs/latest/model.safetensors inputs.csv --no-proba | head
"""


def register(sub) -> None:
    e = sub.add_parser("evaluate", help="accuracy, loss, per-class table and confusion matrix of a saved model",
                       formatter_class=Formatter,
                       description="Evaluate a saved model: by default on the test split of the data it was trained "
                                   "on (refused if that file changed since), or on all rows of the data given "
                                   "with --data (CSV columns matched to the model's by name).",
                       epilog=EVALUATE_EXAMPLES)
    e.add_argument("model", help="a model file written by deltaprop train")
    e.add_argument("--data", help="data spec, as for train (default: the model's own data)")
    e.add_argument("--target", help="the label column of a CSV file (default: the model's target column)")
    e.add_argument("--split", choices=("test", "train", "all"),
                   help="which rows: the test or train side of the split training made, or all (default: test "
                        "for the model's own data, all for --data)")
    e.add_argument("--drop", metavar="COL[,COL]", help="CSV columns to leave out (names or 0-based indices)")
    e.add_argument("--delimiter", help="the CSV cell separator: comma, semicolon or tab (default: detected)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("predict", help="labels and probabilities for new inputs", formatter_class=Formatter,
                       description="Predict with a saved model. INPUT is a .csv (with a header its columns are "
                                   "matched to the model's by name and the model's target column is left out), "
                                   ".npy, .npz (array X) or IDX file. The model's input scaling is applied. Writes "
                                   "CSV: the label, then one probability per class; for regression one column "
                                   "named after the target.", epilog=PREDICT_EXAMPLES)
    p.add_argument("model", help="a model file written by deltaprop train")
    p.add_argument("input", help="the inputs, one example per row")
    p.add_argument("-o", "--output", help="write the CSV here (default: standard output)")
    p.add_argument("--drop", metavar="COL[,COL]", help="CSV columns to leave out (names or 0-based indices)")
    p.add_argument("--delimiter", help="the CSV cell separator: comma, semicolon or tab (default: detected)")
    p.add_argument("--no-proba", action="store_true", help="write the labels only")
    p.set_defaults(handler=cmd_predict)

    i = sub.add_parser("info", help="architecture, parameters and training summary of a model file",
                       formatter_class=Formatter,
                       description="What a model file holds: the network, its classes and input scaling, "
                                   "the data it was trained on and how that file was read (delimiter, "
                                   "columns left out), and how the training ended.")
    i.add_argument("model", help="a model file, or the run directory `deltaprop train` wrote it in")
    i.add_argument("--json", action="store_true")
    i.set_defaults(handler=cmd_info)



def _notes(notes) -> None:
    for note in notes:
        sys.stderr.write(f"deltaprop: note: {note}\n")


def cmd_evaluate(args) -> int:
    net = load_model(args.model)
    X, y, data, split = evaluation_data(net, args.data, args.target, args.split, args.drop, args.delimiter)
    if args.data:  # the model's own data: its notes were given when it trained
        _notes(data.notes)
    if X.shape[0] == 0:
        raise DataError(f"the {split} split of {data.name} holds no rows", "choose another --split")
    X = model_inputs(net, X)
    classes = class_names(net)
    if net.is_classifier and classes is not None:
        if data.class_names is None:
            raise DataError("the model is a classifier but the data's labels are numbers to regress",
                            "pass --data with class labels")
        y = labels_for_model(net, data, y)
    result = metrics(net, X, y, classes if net.is_classifier else None)
    result["rows"] = int(X.shape[0])
    result["split"] = split
    result["data"] = data.source or {"spec": args.data or (net.meta.get("data") or {}).get("spec")}
    if args.json:
        out(json.dumps(result, indent=2, default=json_default))
        return 0
    out(f"{args.model}: {net!r}")
    out(f"data {data.name}, {'all rows' if split == 'all' else split + ' split'}, {X.shape[0]} rows")
    if "accuracy" in result:
        out(f"accuracy {result['accuracy']:.4f}   loss {result['loss']:.4f}")
        print_class_table(result)
        from deltaprop.cli import report

        out()
        out(report.confusion_table(np.array(result["confusion_matrix"]), classes))
    else:
        from deltaprop.cli import report

        out(report.regression_table(result, target_name(net)))
    return 0


def cmd_predict(args) -> int:
    from deltaprop.io.datasets import load_inputs, parse_delimiter

    if args.output and os.path.isdir(args.output):  # before any work: a usage error, not a failed write
        raise ConfigError(f"-o {shown(args.output)} is a directory", "name a file, such as "
                          f"{shown(os.path.join(args.output, 'predictions.csv'))}")
    net = load_model(args.model)
    notes = []
    X = load_inputs(args.input, drop=args.drop, feature_names=net.meta.get("feature_names"),
                    target_name=target_name(net),
                    delimiter=parse_delimiter(args.delimiter) if args.delimiter else None,
                    notes=notes, dropped_in_training=(net.meta.get("data") or {}).get("drop"))
    _notes(notes)
    if X.shape[0] == 0:
        raise InputError(f"{args.input} holds no rows", "pass at least one example")
    A = net.forward(model_inputs(net, X))
    finite_outputs(net, A)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    classes = class_names(net)
    if net.is_classifier and classes is not None and not (net.activations[-1] == "sigmoid" and A.shape[1] > 1):
        P = net.probabilities(A)
        labels = net.decide(A)
        # Class names come from files: a spreadsheet must never run one as a formula.
        writer.writerow(["label"] + ([] if args.no_proba else [csv_cell(f"p_{c}") for c in classes]))
        cells = [csv_cell(c) for c in classes]
        for k, row in zip(labels, P):
            writer.writerow([cells[k]] + ([] if args.no_proba else [repr(float(p)) for p in row]))
    else:
        values = net.decide(A) if not net.is_classifier else A
        values = values.reshape(len(values), -1)
        name = target_name(net) or "y"
        header = [name] if values.shape[1] == 1 else [f"{name}_{j}" for j in range(1, values.shape[1] + 1)]
        writer.writerow(header)
        for row in values:
            writer.writerow([repr(float(v)) for v in row])
    text = buf.getvalue()
    if args.output:
        atomic_write(args.output, text.encode("utf-8"))
        sys.stderr.write(f"wrote {X.shape[0]} predictions to {shown(args.output)}\n")
    else:
        sys.stdout.write(text)
    return 0


def reading_words(data: dict) -> str:
    """How a run read its CSV file, in words: the delimiter (detected or given), a missing header, the
    columns left out and why; "" when the model records nothing of it (data that is not a CSV file)."""
    from deltaprop.io.files import safe_text

    read = data.get("read") if isinstance(data.get("read"), dict) else None
    parts = []
    if read is not None:
        given = "detected" if read.get("delimiter_detected") else "given with --delimiter"
        parts.append(f"{safe_text(read.get('delimiter'))}-separated ({given})")
        if read.get("header") is False:
            parts.append("no header row (columns by number)")
        elif read.get("numbered_header"):
            parts.append("header 0, 1, ... (pandas' names for unnamed columns)")
        why_words = {"index": "pandas' index", "drop": "--drop", "target": "the model's target",
                     "drop in training": "--drop in training"}
        left = [item for item in read.get("left_out") or [] if isinstance(item, dict)]
        words = []
        for item in left:
            why = item.get("why")
            if why == "index" and not item.get("column"):
                words.append("the unnamed first column (pandas' index)")
            else:
                column = safe_text(repr(item.get("column")))
                words.append(f"{column} ({why_words.get(why) or safe_text(why)})")
        parts.append("left out " + ", ".join(words) if words else "no column left out")
    else:  # a model written before runs recorded how they read their file: what was typed
        if data.get("delimiter"):
            parts.append(f"--delimiter {safe_text(data['delimiter'])}")
        if data.get("drop"):
            parts.append(f"left out {safe_text(data['drop'])} (--drop)")
    return "; ".join(parts)


def cmd_info(args) -> int:
    if os.path.isdir(args.model) and os.path.isfile(os.path.join(args.model, MODEL_FILE)):
        args.model = os.path.join(args.model, MODEL_FILE)  # a run directory: its model
    net = load_model(args.model)
    meta = net.meta
    info = {
        "file": str(args.model),
        "architecture": "-".join(map(str, net.sizes)),
        "sizes": net.sizes,
        "activations": net.activations,
        "loss": net.loss.name,
        "dtype": net.dtype.name,
        "parameters": net.n_params,
        "layers": [{"layer": l, "W": list(layer.W.shape), "b": list(layer.b.shape), "activation": layer.activation.name}
                   for l, layer in enumerate(net.layers, 1)],
        "task": meta.get("task"),
        "classes": meta.get("classes"),
        "scaling": (meta.get("scaler") or {}).get("kind"),
        "target_scaling": meta.get("target_scaling"),
        "data": meta.get("data"),
        "training": meta.get("training"),
        "source": meta.get("source"),
    }
    if args.json:
        out(json.dumps(info, indent=2, default=json_default))
        return 0
    out(f"{args.model}")
    out(f"  network     {net!r}")
    for row in info["layers"]:
        out(f"  layer {row['layer']}     W {row['W'][0]}×{row['W'][1]}, b {row['b'][0]}, {row['activation']}")
    if info["classes"]:
        names = [str(c) for c in info["classes"]]
        out(f"  classes     {len(names)}: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}")
    if info["scaling"]:
        out(f"  scaling     {info['scaling']} (fitted on the training rows, applied by evaluate and predict)")
    if info["source"]:
        src = info["source"]
        detail = ", ".join(f"{k} {v}" for k, v in src.items() if k not in ("format", "file") and v is not None)
        out(f"  imported    from {src.get('format')}{' (' + detail + ')' if detail else ''}")
    data, tr = info["data"] or {}, info["training"] or {}
    if data:
        out(f"  data        {data.get('name') or data.get('spec')} (seed {data.get('seed')}, test fraction "
            f"{data.get('test_fraction')})")
        source = data.get("source") or {}
        if source:
            out(f"  file        {source.get('path')} ({source.get('size')} bytes, sha256 "
                f"{str(source.get('sha256'))[:12]}…)")
        read = reading_words(data)
        if read:
            out(f"  read        {read}")
        if data.get("target_name"):
            scaled = " (standardised in training, predictions in its units)" if info["target_scaling"] else ""
            out(f"  target      {data['target_name']}{scaled}")
    if (info["training"] or {}).get("class_weight"):
        out(f"  weights     class_weight={info['training']['class_weight']}")
    if tr:
        test = tr.get("test") or {}
        scores = ", ".join(f"{k} {v:.4g}" for k, v in test.items() if isinstance(v, (int, float)))
        out(f"  training    {tr.get('epochs')} epochs, {tr.get('optimizer')}, batch {tr.get('batch_size')}, "
             f"{tr.get('seconds')} s, {tr.get('status')}{'; ' + tr['stop_reason'] if tr.get('stop_reason') else ''}")
        if scores:
            out(f"  test        {scores}")
        if tr.get("finished"):
            out(f"  finished    {tr['finished']}")
    return 0
