"""``deltaprop import`` and ``deltaprop export``: networks in from ONNX, out to ONNX, PyTorch or NumPy.

    deltaprop import model.onnx -o model.safetensors
    deltaprop export runs/LATEST/model.safetensors --to onnx -o model.onnx
    deltaprop export runs/LATEST/model.safetensors --to torch -o torch_model/   (model.safetensors, model.py)
    deltaprop export runs/LATEST/model.safetensors --to npz -o weights.npz

The exported model takes the raw inputs ``deltaprop predict`` takes (the stored input scaling comes
with it) and gives the probabilities (classifiers) or values (regression). After writing, the export
is run on inputs (``--check-data FILE``, or 64 random rows in the training range) by ONNX Runtime or
PyTorch when installed and compared with deltaprop; a difference above the tolerance exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from deltaprop.cli.common import out
from deltaprop.errors import ConfigError, InputError

__all__ = ["register"]

FORMATS = ("onnx", "torch", "npz")
_TOLERANCE = {np.dtype("float32"): 1e-5, np.dtype("float64"): 1e-10}


def register(subparsers) -> None:
    """Add the ``import`` and ``export`` commands to the command's subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    i = subparsers.add_parser(
        "import",
        help="read an ONNX MLP (deltaprop's, or skl2onnx's scikit-learn MLP) into a deltaprop model file",
        formatter_class=fmt,
        description="Read an MLP-shaped ONNX graph (MatMul/Gemm + Add + Relu/Tanh/Sigmoid/LeakyRelu/Softmax, "
        "with an input scaling of Sub/Div or skl2onnx's Scaler before the first layer) and save it as a deltaprop model "
        "file, ready for explain, trace, evaluate, predict and further training.\n\n"
        "  deltaprop import model.onnx -o model.safetensors\n"
        "  deltaprop explain model.safetensors\n\n"
        "explain, trace, info, evaluate and predict also read an .onnx file directly.",
    )
    i.add_argument("file", help="an .onnx file")
    i.add_argument("-o", "--output", help="the model file to write (default: FILE with .safetensors)")
    i.set_defaults(handler=cmd_import)

    e = subparsers.add_parser(
        "export",
        help="write a model as ONNX, a PyTorch state_dict + model.py, or NumPy arrays",
        formatter_class=fmt,
        description="Write a deltaprop model (or an .onnx file) for other tools. The export applies the "
        "model's input scaling, so it takes the raw inputs `deltaprop predict` takes, and returns "
        "probabilities (classifiers) or values (regression).\n\n"
        "  --to onnx  -o FILE.onnx   one graph (opset 17); class names in its metadata_props\n"
        "  --to torch -o DIR         DIR/model.safetensors (the nn.Sequential's state_dict, the input\n"
        "                            scaling as its first layer) and DIR/model.py (rebuilds it)\n"
        "  --to npz   -o FILE.npz    W1, b1, ..., activations, shift, scale, classes, meta\n\n"
        "The export is then run by ONNX Runtime or PyTorch, where installed, and compared with "
        "deltaprop (--no-check skips this).",
        epilog="examples:\n"
        "  deltaprop export runs/<stamp>/model.safetensors --to onnx -o model.onnx\n"
        "  deltaprop export runs/<stamp>/model.safetensors --to torch -o torch_model\n"
        "  deltaprop export runs/<stamp>/model.safetensors --to npz -o weights.npz\n"
        "  deltaprop export model.onnx --to npz -o from_onnx.npz",
    )
    e.add_argument("model", help="a model file written by deltaprop (or an .onnx file)")
    e.add_argument(
        "--to", choices=FORMATS, help="the format (default: from the -o name: .onnx, .npz, else torch)"
    )
    e.add_argument("-o", "--output", required=True, help="the file (onnx, npz) or directory (torch) to write")
    e.add_argument(
        "--logits", action="store_true", help="torch: leave out the output activation (returns Z_L)"
    )
    e.add_argument(
        "--no-scaling",
        action="store_true",
        help="leave out the input scaling: the export takes inputs already scaled",
    )
    e.add_argument(
        "--check-data",
        metavar="INPUT",
        help="check the export on these inputs (.csv, .npy, .npz), read as predict reads them (default: 64 "
        "random rows)",
    )
    e.add_argument("--drop", help="columns of the --check-data CSV to leave out (as for predict)")
    e.add_argument(
        "--no-check", action="store_true", help="do not run the export to compare it with deltaprop"
    )
    e.set_defaults(handler=cmd_export)


def _describe(net) -> list[str]:
    lines = [f"  network   {net!r}"]
    classes = net.meta.get("classes")
    if classes:
        names = [str(c) for c in classes]
        lines.append(f"  classes   {len(names)}: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''}")
    scaler = net.meta.get("scaler")
    if scaler:
        lines.append(f"  scaling   {scaler['kind']} ({scaler.get('n_features')} features)")
    target = net.meta.get("target_scaling")
    if target and not net.is_classifier:
        lines.append("  targets   learnt standardised; values come out in their units (A·std + mean)")
    return lines


# -- import -------------------------------------------------------------------------------------------
def cmd_import(args) -> int:
    from deltaprop.io.exchange.onnx import from_onnx
    from deltaprop.io.modelfile import save

    src = Path(args.file)
    if src.suffix.lower() != ".onnx":
        raise ConfigError(
            f"deltaprop import reads .onnx files, and {src.name} is not one",
            "for a deltaprop model file there is nothing to import: use it directly",
        )
    target = Path(args.output) if args.output else src.with_suffix(".safetensors")
    if target.resolve() == src.resolve():
        raise ConfigError(f"-o {target} would overwrite the ONNX file", "pass another -o path")
    net = from_onnx(src)
    save(net, target)
    source = net.meta.get("source", {})
    out(f"read {src} ({source.get('producer', 'unknown producer')}, opset {source.get('opset')})")
    for line in _describe(net):
        out(line)
    out(f"wrote {target}")
    out(f"next: deltaprop explain {target}   |   deltaprop trace {target}")
    return 0


# -- export -------------------------------------------------------------------------------------------
def _format_for(args) -> str:
    if args.to:
        return args.to
    suffix = Path(args.output).suffix.lower()
    to = {".onnx": "onnx", ".npz": "npz"}.get(suffix, "torch" if not suffix else None)
    if to is None:
        raise ConfigError(
            f"cannot tell the format from -o {args.output}", "pass --to onnx, --to torch or --to npz"
        )
    sys.stderr.write(f"format {to} (from -o {args.output}; pass --to to choose)\n")
    return to


def cmd_export(args) -> int:
    import deltaprop

    to = _format_for(args)
    net = deltaprop.load(args.model)
    scaling = not args.no_scaling
    if args.logits and to != "torch":
        raise ConfigError("--logits is for --to torch", "drop --logits, or export with --to torch")
    target = Path(args.output)
    if to == "onnx":
        from deltaprop.io.exchange.onnx import to_onnx

        to_onnx(net, target, scaling=scaling)
        written = [target]
    elif to == "npz":
        from deltaprop.io.exchange.npz import to_npz

        to_npz(net, target, scaling=scaling)
        written = [target]
    else:
        from deltaprop.io.exchange.torch import write_torch_dir

        written = write_torch_dir(net, target, logits=args.logits, scaling=scaling)
    out(f"read {args.model}")
    for line in _describe(net):
        out(line)
    inputs = (
        "raw inputs, as deltaprop predict takes them"
        if (scaling and net.meta.get("scaler"))
        else "inputs as the network sees them (no scaling in the export)"
        if net.meta.get("scaler")
        else "inputs (the model stores no scaling)"
    )
    what = "logits Z_L" if args.logits else "probabilities" if net.is_classifier else "values"
    out(f"wrote {', '.join(map(str, written))}: {inputs} -> {what}")
    if args.no_check:
        return 0
    return _check(net, to, written, args, scaling)


def _check_inputs(net, args, scaling: bool) -> tuple[np.ndarray, str]:
    from deltaprop.io.exchange.common import scaling_of

    affine = scaling_of(net)
    if args.check_data:
        from deltaprop.cli.common import target_name
        from deltaprop.io.datasets import load_inputs

        # Read as deltaprop predict reads it: columns matched by name, the target, pandas' index and the
        # columns training left out skipped (each said in a note).
        notes = []
        X = load_inputs(args.check_data, drop=args.drop, feature_names=net.meta.get("feature_names"),
                        target_name=target_name(net), notes=notes,
                        dropped_in_training=(net.meta.get("data") or {}).get("drop"))
        for note in notes:
            sys.stderr.write(f"deltaprop: note: {note}\n")
        if X.ndim != 2 or X.shape[1] != net.sizes[0] or X.shape[0] == 0:
            raise InputError(
                f"{args.check_data} holds {X.shape} inputs; the model takes (m, {net.sizes[0]})",
                "pass inputs with the model's columns",
            )
        if not scaling and affine is not None:
            X = (X - affine[0]) / affine[1]
        return np.asarray(X, dtype=net.dtype), f"the {X.shape[0]} rows of {args.check_data}"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, net.sizes[0]))
    if scaling and affine is not None:
        X = X * affine[1] + affine[0]  # the scaled inputs are then about N(0, 1), as in training
    return X.astype(net.dtype), "64 random rows in the training range"


def _expected(net, X, scaling: bool, logits: bool) -> np.ndarray:
    from deltaprop.io.exchange.common import scaling_of

    affine = scaling_of(net) if scaling else None
    if affine is not None:
        X = (X - affine[0]) / affine[1]  # in the model's dtype, as Scaler.transform
    if logits:
        return net.logits(X)[0]
    A = net.forward(X)
    if net.is_classifier:
        return net.probabilities(A)
    return net.decide(A).reshape(len(A), -1)  # in the targets' units, as deltaprop predict writes them


def _check(net, to, written, args, scaling: bool) -> int:
    X, where = _check_inputs(net, args, scaling)
    want = _expected(net, X, scaling, args.logits)
    if to == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            out("not checked: ONNX Runtime is not installed (pip install onnxruntime)")
            return 0
        session = ort.InferenceSession(str(written[0]), providers=["CPUExecutionProvider"])
        got = session.run(None, {"X": X})[0]
        runner = f"ONNX Runtime {ort.__version__}"
    elif to == "torch":
        try:
            import safetensors.torch  # noqa: F401
            import torch
        except ImportError:
            out(
                "not checked: PyTorch or safetensors is not installed "
                "(pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
            )
            return 0
        got = _run_model_py(written[1], X)
        runner = f"PyTorch {torch.__version__} (model.py)"
    else:
        got = _run_npz(written[0], X, scaling and net.meta.get("scaler") is not None)
        runner = "NumPy on the saved arrays"
    # A regression's values are compared relative to their size: the network's outputs A (about 1) carry
    # rounding of the dtype's size, and y = A·std + mean carries it times std and |y|.
    size = np.ones(1)
    regression = not net.is_classifier and not args.logits
    if regression:
        from deltaprop.io.exchange.common import target_scaling_of

        target = target_scaling_of(net)
        size = np.maximum(np.abs(want), 1.0 if target is None else np.maximum(target[1], 1.0))
    diff = float(np.max(np.abs(got - want) / size)) if got.shape == want.shape else float("inf")
    tol = _TOLERANCE[net.dtype]
    verdict = "ok" if diff <= tol else "FAILED"
    relative = " (relative to max(1, |y|, target std))" if regression else ""
    out(
        f"checked with {runner} on {where}: largest difference from deltaprop {diff:.1e}{relative} "
        f"(tolerance {tol:g}) {verdict}"
    )
    return 0 if diff <= tol else 1


def _run_model_py(path: Path, X) -> np.ndarray:
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("deltaprop_exported_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.no_grad():
        return module.load()(torch.from_numpy(np.ascontiguousarray(X))).numpy()


def _run_npz(path: Path, X, scaled: bool) -> np.ndarray:
    """The forward pass from the .npz arrays alone, as a reader of the file would write it."""
    from deltaprop.activations import get_activation

    with np.load(path, allow_pickle=False) as f:
        A = (X - f["shift"]) / f["scale"] if scaled else X
        acts = [str(a) for a in f["activations"]]
        for l, name in enumerate(acts, 1):
            A = get_activation(name).forward(A @ f[f"W{l}"].T + f[f"b{l}"])
        if "target_std" in f.files:
            A = A * f["target_std"] + f["target_mean"]
    if acts[-1] == "sigmoid" and A.shape[1] == 1:
        A = np.column_stack([1 - A[:, 0], A[:, 0]])
    return A
