"""ONNX out and in.

Out (:func:`to_onnx`): one graph that does what ``deltaprop predict`` does, on the same raw inputs:

    X' = (X − shift) / scale                  Sub, Div (only when the model stores an input scaling)
    Z_l = A_{l−1} W_lᵀ + b_l                  Gemm(A_{l−1}, W_l, b_l, transB=1): W_l stays (n_l, n_{l−1})
    A_l = g_l(Z_l)                            Relu | Tanh | Sigmoid | LeakyRelu(0.01) | Softmax(−1) | Exp
    y = A_L · std + mean                      Mul, Add (a regression trained on standardised targets)

(a float64 network's leaky ReLU is PRelu with the slope 0.01 as a float64 tensor: LeakyRelu's alpha is a
float32 attribute.) The output is ``probabilities`` (m, K) for a classifier (one sigmoid unit p becomes
the pair [1 − p, p], as ``deltaprop predict`` writes it) or ``values`` (m, n_L) for a regression, in the
targets' units. The class names, the task and the whole ``net.meta`` ride in the model's
``metadata_props``. Opset 17, IR version 8: what ONNX Runtime has run since 1.13.

In (:func:`from_onnx`): an MLP-shaped graph, read along the path from its input: Cast/Identity pass
through; Sub/Div (or Mul) before the first layer are the input scaling; MatMul (+ Add) or Gemm make a
layer; Relu, Tanh, Sigmoid, LeakyRelu or PRelu (one slope, 0.01), Softmax, Exp give its activation;
Mul (+ Add) by constants after a regression's last layer are its target scaling, ``meta["target_scaling"]``.
What classifiers add after the probabilities (ArgMax, ZipMap, ArrayFeatureExtractor, the [1 − p, p]
pair, label Casts and Reshapes: what skl2onnx writes for scikit-learn's MLP) is read for the class names
and skipped. Any other operator on the path is refused with its name and the list above.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.errors import ConfigError, DeltapropError, ModelFileError
from deltaprop.io.exchange.common import (
    LEAKY_SLOPE,
    assemble,
    class_names,
    jsonable,
    need_network,
    scaler_dict,
    scaling_of,
    target_scaling_dict,
    target_scaling_of,
)
from deltaprop.io.optional import need

if TYPE_CHECKING:
    import onnx

    from deltaprop.model import Network

__all__ = ["IR_VERSION", "OPSET", "SUPPORTED_OPS", "from_onnx", "to_onnx"]

OPSET = 17
IR_VERSION = 8

_ACTIVATIONS = {
    "Relu": "relu",
    "Tanh": "tanh",
    "Sigmoid": "sigmoid",
    "LeakyRelu": "leaky_relu",
    "Softmax": "softmax",
    "Exp": "exp",
}
# What classifiers compute from the probabilities (labels, dictionaries): read for class names, skipped.
_AFTER_OUTPUT = {
    "ArgMax",
    "ZipMap",
    "ArrayFeatureExtractor",
    "Concat",
    "Reshape",
    "Cast",
    "Identity",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Sub",
    "LabelEncoder",
    "TopK",
}
SUPPORTED_OPS = (
    "MatMul",
    "Add",
    "Gemm",
    "Relu",
    "Tanh",
    "Sigmoid",
    "LeakyRelu",
    "PRelu",
    "Softmax",
    "Exp",
    "Sub",
    "Div",
    "Mul",
    "Scaler",
    "Cast",
    "Identity",
    "Reshape",
    "Flatten",
    "Constant",
)
_PURPOSE_OUT = "ONNX export"
_PURPOSE_IN = "reading ONNX files"


# -- out ------------------------------------------------------------------------------------------------
def to_onnx(net: Network, path: str | os.PathLike[str] | None = None, *,
            scaling: bool = True) -> onnx.ModelProto:
    """The ONNX graph of ``net`` (an ``onnx.ModelProto``), written atomically to ``path`` if given.

    With ``scaling=True`` (the default) the graph starts with the model's stored input scaling,
    X' = (X − shift)/scale, so it takes the raw inputs ``deltaprop predict`` takes; ``scaling=False``
    gives the bare network (the inputs ``net.forward`` takes). Input ``X`` (m, n_x); output
    ``probabilities`` (classifiers) or ``values`` (regression), in the network's dtype.
    """
    net = need_network(net, "to_onnx")
    onnx = need("onnx", _PURPOSE_OUT)
    from onnx import TensorProto, helper, numpy_helper

    elem = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("float64"): TensorProto.DOUBLE}[net.dtype]
    inits, nodes = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=net.dtype), name))
        return name

    cur = "X"
    affine = scaling_of(net) if scaling else None
    if affine is not None:
        shift, scale = affine
        # The same two steps, in the same dtype, as Scaler.transform: out -= shift; out /= scale.
        nodes.append(
            helper.make_node("Sub", [cur, const("scaling_shift", shift)], ["X_shifted"], name="scaling_sub")
        )
        nodes.append(
            helper.make_node(
                "Div", ["X_shifted", const("scaling_scale", scale)], ["X_scaled"], name="scaling_div"
            )
        )
        cur = "X_scaled"
    L = len(net.layers)
    out_name = "probabilities" if net.is_classifier else "values"
    target = target_scaling_of(net)
    final = "values_standardised" if target is not None else out_name
    for l, layer in enumerate(net.layers, 1):
        act = layer.activation.name
        last = l == L
        z = f"Z{l}" if (act != "identity" or not last) else final
        nodes.append(
            helper.make_node(
                "Gemm",
                [cur, const(f"W{l}", layer.W), const(f"b{l}", layer.b)],
                [z],
                transB=1,
                name=f"layer{l}_gemm",
            )
        )
        cur = z
        if act == "identity":
            continue
        a = f"A{l}"
        if last and not (act == "sigmoid" and layer.n_out == 1):
            a = final
        op = {v: k for k, v in _ACTIVATIONS.items()}[act]
        attrs = {"alpha": LEAKY_SLOPE} if act == "leaky_relu" else {"axis": -1} if act == "softmax" else {}
        ins = [cur]
        if act == "leaky_relu" and net.dtype == np.float64:
            # LeakyRelu's alpha is a float32 attribute: 0.01 would become 0.009999999776, 2e-10 off in every
            # negative unit of a float64 network. PRelu takes its slope as a tensor of the graph's dtype.
            op, attrs, ins = "PRelu", {}, [cur, const(f"slope{l}", [LEAKY_SLOPE])]
        nodes.append(helper.make_node(op, ins, [a], name=f"layer{l}_{act}", **attrs))
        cur = a
    n_out = net.sizes[-1]
    if net.activations[-1] == "sigmoid" and n_out == 1:
        # One sigmoid unit p: the probabilities of the two classes are [1 − p, p], as predict writes them.
        nodes.append(
            helper.make_node("Sub", [const("one", 1.0), cur], ["one_minus_p"], name="negative_class")
        )
        nodes.append(helper.make_node("Concat", ["one_minus_p", cur], [out_name], axis=1, name="class_pair"))
        n_out = 2
    if target is not None:
        # Trained on standardised targets: y = A·std + mean, the two steps of Network.decide in its dtype.
        mean, std = target
        nodes.append(helper.make_node("Mul", [cur, const("target_std", std)], ["values_times_std"],
                                      name="target_scale"))
        nodes.append(helper.make_node("Add", ["values_times_std", const("target_mean", mean)], [out_name],
                                      name="target_shift"))
    graph = helper.make_graph(
        nodes,
        "deltaprop_mlp",
        [helper.make_tensor_value_info("X", elem, ["m", net.sizes[0]])],
        [helper.make_tensor_value_info(out_name, elem, ["m", n_out])],
        inits,
    )
    from deltaprop import __version__

    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="deltaprop",
        producer_version=__version__,
        doc_string=_doc(net, affine is not None),
    )
    props = {
        "deltaprop_meta": json.dumps(jsonable(net.meta), sort_keys=True, allow_nan=False),
        "task": "classification" if net.is_classifier else "regression",
        "architecture": json.dumps(
            {"sizes": net.sizes, "activations": net.activations, "loss": net.loss.name}
        ),
        "input_scaling": "applied by the graph" if affine is not None else "none",
        "target_scaling": "applied by the graph" if target is not None else "none",
    }
    classes = class_names(net)
    if classes is not None:
        props["classes"] = json.dumps(classes)
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    if path is not None:
        from deltaprop.io.modelfile import atomic_write

        try:
            atomic_write(path, model.SerializeToString())
        except OSError as exc:
            raise ModelFileError(
                f"cannot write {path}: {exc.strerror or exc}",
                "check that the directory exists and is writable",
            ) from None
    return model


def _doc(net, scaled: bool) -> str:
    what = "class probabilities" if net.is_classifier else "predicted values"
    inputs = (
        "raw inputs (the graph applies the model's input scaling)"
        if scaled
        else "inputs as the network sees them"
    )
    units = "; values in the targets' units (y = A std + mean)" if target_scaling_of(net) is not None else ""
    return (f"deltaprop {net!r}: {inputs} -> {what}; Z = A_prev W^T + b per layer (Gemm, transB=1){units}.")


# -- in -------------------------------------------------------------------------------------------------
def from_onnx(source: str | os.PathLike[str] | onnx.ModelProto) -> Network:
    """A Network from an MLP-shaped ONNX graph: a path, or an ``onnx.ModelProto``.

    Reads deltaprop's own export (the network, its input scaling and ``net.meta`` come back) and the
    graphs skl2onnx writes for scikit-learn's ``MLPClassifier``/``MLPRegressor`` (classes from the
    graph). A file that is not ONNX raises ModelFileError (exit 3); an operator or layout deltaprop
    cannot run raises ConfigError (exit 2) naming it and listing what is supported.
    """
    label = "the ONNX model"
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        label = str(path)
        data = _read_bytes(path)  # before importing onnx: a wrong path is answered at once
        model = _parse(need("onnx", _PURPOSE_IN), path, data)
    else:
        need("onnx", _PURPOSE_IN)
        model = source
    from onnx import numpy_helper

    graph = model.graph
    props = {p.key: p.value for p in model.metadata_props}
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ConfigError(
            f"{label} has {len(inputs)} inputs ({', '.join(i.name for i in inputs) or 'none'}); "
            "deltaprop reads graphs with one input X (m, n_features)",
            "export the network with a single 2-d input",
        )
    walk = _Walk(label, consts)
    walk.run(graph.node, inputs[0].name)
    weights = [(W, b) for W, b, _ in walk.layers]
    activations = [act for _, _, act in walk.layers]
    meta = {}
    if "deltaprop_meta" in props:
        try:
            meta = json.loads(props["deltaprop_meta"])
        except ValueError:
            raise ModelFileError(
                f"{label}: its deltaprop_meta property is not valid JSON",
                "the file is damaged; export the model again",
            ) from None
        meta = meta if isinstance(meta, dict) else {}
    classes = walk.classes
    if "deltaprop_meta" in props:
        classes = meta.get("classes")  # deltaprop's own export: the names exactly as the model held them
    elif "classes" in props:
        try:
            classes = json.loads(props["classes"])
        except ValueError:
            raise ModelFileError(
                f"{label}: its classes property is not valid JSON", "export the model again"
            ) from None
    n_x = weights[0][0].shape[1]
    scaler = None
    if walk.shift is not None or walk.scale is not None:
        scaler = scaler_dict(walk.shift, walk.scale, n_x, (meta.get("scaler") or {}).get("kind"))
        scaler = _keep_exact(meta.get("scaler"), scaler, weights[0][0].dtype)
    target = None
    if walk.target_std is not None or walk.target_mean is not None:
        target = target_scaling_dict(walk.target_mean, walk.target_std, weights[-1][0].shape[0],
                                     meta.get("target_scaling"), weights[-1][0].dtype)
    producer = " ".join(x for x in (model.producer_name, model.producer_version) if x) or "unknown"
    source_info = {"format": "onnx", "producer": producer, "opset": _opset(model)}
    if label != "the ONNX model":
        source_info["file"] = label
    net = assemble(
        weights,
        activations,
        classes=classes if walk.classifier_output() else None,
        scaler=scaler,
        meta=meta,
        source=source_info,
        target_scaling=target,
        what=label,
    )
    return net


_HINT = "pass a file written by deltaprop export --to onnx, torch.onnx.export or skl2onnx"


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ModelFileError(f"no file at {path}", "pass the path of an .onnx file")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not an ONNX file", "pass the path of an .onnx file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(
            f"cannot read {path}: {exc.strerror or exc}", "check the path and its permissions"
        ) from None
    # An ONNX file is a protobuf ModelProto whose first field is ir_version (field 1, a varint: byte 0x08).
    if not data or data[0] != 0x08:
        from deltaprop.io.modelfile import _looks_like

        head = data[:64]
        like = (
            "; it looks like a safetensors file (a deltaprop model file?)"
            if data[8:9] == b"{"
            else _looks_like(head[:8])
            or (
                "; it looks like a text file"
                if head.isascii() and all(32 <= c < 127 or c in b"\t\r\n" for c in head)
                else ""
            )
        )
        what = "is empty" if not data else f"starts with byte 0x{data[0]:02x}, not an ONNX model's 0x08{like}"
        raise ModelFileError(f"{path} is not an ONNX model: it {what}", _HINT)
    return data


def _parse(onnx, path: Path, data: bytes):
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"{path} is not an ONNX model: it cannot be parsed ({type(exc).__name__}: {exc})", _HINT
        ) from None
    # Protobuf parses many byte strings as an empty or partial message: insist on a real graph.
    if not model.ir_version or not model.graph.node or not model.graph.input:
        raise ModelFileError(f"{path} is not an ONNX model: it holds no graph with inputs and nodes", _HINT)
    return model


def _opset(model) -> int | None:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return None


def _keep_exact(stored: dict | None, read: dict, dtype) -> dict:
    """The scaling the meta stored (float64 lists) when it is the one the graph applies, rounded to
    the graph's dtype; otherwise the graph's own numbers (the graph is what runs)."""
    if not isinstance(stored, dict) or stored.get("kind") != read.get("kind"):
        return read
    try:
        from deltaprop.io.preprocessing import Scaler

        s = Scaler.from_dict(stored)
    except DeltapropError:
        return read
    for key, value in (("shift", s.shift), ("scale", s.scale)):
        if key in read and not np.array_equal(np.asarray(value, dtype), np.asarray(read[key], dtype)):
            return read
    if read.get("kind") == "divide" and np.asarray(s.by, dtype) != np.asarray(read["by"], dtype):
        return read
    return s.to_dict()


class _Walk:
    """Follows the data path from the graph's input and collects [(W, b, activation)] layers."""

    def __init__(self, label: str, consts: dict):
        self.label = label
        self.consts = consts
        self.layers: list = []
        self.pending = None  # [W, b, activation] of the layer being read
        self.shift = self.scale = None
        self.classes = None
        self.done = False  # past the output activation: only what classifiers add may follow
        self.reshaped = False
        self.target_std = self.target_mean = None  # y = A·std + mean after a regression's last layer

    def unsupported(self, node, why: str = ""):
        what = f"operator {node.op_type}" + (f" (node {node.name!r})" if node.name else "")
        return ConfigError(
            f"{self.label}: {what} {why or 'is not one deltaprop can run'}",
            "deltaprop reads MLP graphs: "
            + ", ".join(SUPPORTED_OPS)
            + " (and the label outputs skl2onnx adds: ArgMax, ZipMap, ArrayFeatureExtractor)",
        )

    def const(self, node, name):
        if name not in self.consts:
            raise self.unsupported(node, f"reads {name!r}, which is neither the data path nor a constant")
        return np.asarray(self.consts[name])

    def output_numbers(self, node, ins, cur, verb: str) -> np.ndarray:
        """The constant a Mul or Add applies to the network's outputs (the target scaling's std or mean),
        in float64: one number, or one per output unit."""
        numbers = self.const(node, ins[1] if ins[0] == cur else ins[0]).astype(np.float64)
        outputs = self.pending[0].shape[0]
        if numbers.size not in (1, outputs):
            raise self.unsupported(node, f"{verb} {outputs} outputs by {numbers.size} numbers")
        return numbers

    def finish_layer(self):
        if self.pending is not None:
            W, b, act = self.pending
            self.layers.append((W, b if b is not None else np.zeros(W.shape[0], W.dtype), act or "identity"))
            self.pending = None

    def classifier_output(self) -> bool:
        return bool(self.layers) and self.layers[-1][2] in ("softmax", "sigmoid")

    def run(self, nodes, x: str):
        derived = {x}
        cur = x
        for node in nodes:
            op = node.op_type
            ins = list(node.input)
            if op == "Constant" or not any(i in derived for i in ins):
                continue
            outs = list(node.output)
            if cur not in ins or self.done:
                # A branch off the path: what classifiers compute from their output (labels, maps).
                if op not in _AFTER_OUTPUT or not (self.done or self.layers or self.pending):
                    raise self.unsupported(
                        node, "branches off the path from the input; deltaprop reads a chain of layers"
                    )
                self.note_classes(node)
                self.done = self.done or cur in ins
                derived.update(outs)
                continue
            nxt = self.step(node, cur, ins)
            derived.update(outs)
            if nxt is not None:
                cur = nxt
        self.finish_layer()
        if not self.layers:
            raise ConfigError(
                f"{self.label} holds no layer (no MatMul or Gemm on the path from its input)",
                "deltaprop reads MLP graphs: " + ", ".join(SUPPORTED_OPS),
            )

    def note_classes(self, node):
        if node.op_type == "ArrayFeatureExtractor" and node.input and node.input[0] in self.consts:
            self.classes = [_plain(v) for v in np.asarray(self.consts[node.input[0]]).reshape(-1)]
        elif node.op_type == "ZipMap" and self.classes is None:
            for attr in node.attribute:
                if attr.name == "classlabels_int64s" and attr.ints:
                    self.classes = [int(v) for v in attr.ints]
                elif attr.name == "classlabels_strings" and attr.strings:
                    self.classes = [v.decode("utf-8") for v in attr.strings]

    def scaling(self, node, cur, ins, out):
        """Sub/Div/Mul/Add by constants before the first layer: X' = (X − shift) / scale."""
        op = node.op_type
        if ins[0] != cur and not (op in ("Mul", "Add") and ins[1] == cur):
            raise self.unsupported(
                node,
                "before the first layer takes the data as its second input; "
                "deltaprop's input scaling is (X − shift) / scale",
            )
        c = self.const(node, ins[1] if ins[0] == cur else ins[0]).astype(np.float64)
        if op == "Sub":
            if self.shift is not None:
                raise self.unsupported(node, "shifts the inputs a second time")
            # Div then Sub: X/s − c = (X − c·s)/s.
            self.shift = c if self.scale is None else c * self.scale
            return out
        if op == "Add":
            if self.shift is not None:
                raise self.unsupported(node, "shifts the inputs a second time")
            # X/s + c = (X − (−c·s))/s (skl2onnx's MinMaxScaler is Mul then Add).
            self.shift = -c if self.scale is None else -c * self.scale
            return out
        if self.scale is not None:
            raise self.unsupported(node, "scales the inputs a second time")
        if op == "Mul":
            if np.any(c == 0):
                raise self.unsupported(node, "multiplies the inputs by 0")
            c = 1.0 / c
        self.scale = c
        return out

    def scaler_op(self, node, attrs, out):
        """ai.onnx.ml's Scaler (what skl2onnx writes for StandardScaler and MinMaxScaler):
        Y = (X − offset) · scale, which is X' = (X − shift) / scale' with shift = offset, scale' = 1/scale."""
        if self.shift is not None or self.scale is not None:
            raise self.unsupported(node, "scales the inputs a second time")
        offset = np.asarray(attrs.get("offset", [0.0]), np.float64).reshape(-1)
        factor = np.asarray(attrs.get("scale", [1.0]), np.float64).reshape(-1)
        if np.any(factor == 0) or not np.all(np.isfinite(factor)):
            raise self.unsupported(node, "multiplies the inputs by 0 (or by a number that is not finite)")
        self.shift, self.scale = offset, 1.0 / factor
        return out

    def step(self, node, cur, ins):
        """Read one node on the path; returns the name of the path's next tensor (None: path ends)."""
        op = node.op_type
        attrs = {a.name: _attr(a) for a in node.attribute}
        out = node.output[0]
        if self.reshaped and op not in ("Cast", "Identity"):
            raise self.unsupported(
                node, "follows a Reshape; deltaprop reads reshapes only at the end of the path"
            )
        if op == "Identity":
            return out
        if op == "Cast":
            if attrs.get("to") in (1, 10, 11):  # FLOAT, FLOAT16, DOUBLE: the data stays numbers
                return out
            self.done = True  # a cast to labels (int64, string)
            return None
        if op in ("Reshape", "Flatten", "Squeeze"):
            if not (self.layers or self.pending):
                raise self.unsupported(
                    node, "comes before the first layer; deltaprop takes 2-d inputs (m, n)"
                )
            self.reshaped = True
            return out
        if op in ("Sub", "Div", "Mul", "Add") and not self.layers and self.pending is None:
            return self.scaling(node, cur, ins, out)
        if self.target_std is not None or self.target_mean is not None:
            if op == "Add" and self.target_mean is None:
                self.target_mean = self.output_numbers(node, ins, cur, "shifts")
                return out
            raise self.unsupported(
                node, "follows the scaling of the outputs (Mul, Add), which ends the network"
            )
        if (
            op == "Mul"
            and self.pending is not None
            and self.pending[1] is not None
            and self.pending[2] in (None, "identity", "exp")
        ):
            # A regression trained on standardised targets: y = A·std + mean (Mul, then Add).
            self.target_std = self.output_numbers(node, ins, cur, "scales")
            return out
        if op == "Scaler" and not self.layers and self.pending is None:
            return self.scaler_op(node, attrs, out)
        if (
            op == "Sub"
            and ins[1] == cur
            and self.pending is not None
            and self.pending[2] == "sigmoid"
            and self.pending[0].shape[0] == 1
            and np.all(self.const(node, ins[0]) == 1)
        ):
            self.done = True  # 1 − p beside p: the two-class probabilities of one sigmoid unit
            return None
        if op == "MatMul":
            if ins[0] != cur:
                raise self.unsupported(
                    node, "multiplies from the left; deltaprop reads X W (rows are examples)"
                )
            self.finish_layer()
            W = self.const(node, ins[1])
            if W.ndim != 2:
                raise self.unsupported(node, f"has a weight of shape {W.shape}; a layer needs a 2-d one")
            self.pending = [np.ascontiguousarray(W.T), None, None]
            return out
        if op == "Gemm":
            if ins[0] != cur or attrs.get("transA", 0):
                raise self.unsupported(
                    node, "does not compute A_prev Wᵀ + b with the data as its first input"
                )
            self.finish_layer()
            B = self.const(node, ins[1])
            W = B if attrs.get("transB", 0) else B.T
            W = np.ascontiguousarray(W * attrs.get("alpha", 1.0)).astype(B.dtype)
            b = None
            if len(ins) > 2 and ins[2]:
                C = self.const(node, ins[2]) * attrs.get("beta", 1.0)
                if C.size not in (1, W.shape[0]):
                    raise self.unsupported(
                        node, f"adds a bias of shape {C.shape} to a layer of {W.shape[0]} units"
                    )
                b = np.broadcast_to(C.reshape(-1), (W.shape[0],)).astype(B.dtype)
            self.pending = [W, b, None]
            return out
        if op == "Add":
            if self.pending is None or self.pending[2] is not None or self.pending[1] is not None:
                raise self.unsupported(node, "adds outside a layer's Z = A_prev W + b")
            other = ins[1] if ins[0] == cur else ins[0]
            b = self.const(node, other)
            n_out = self.pending[0].shape[0]
            if b.size not in (1, n_out):
                raise self.unsupported(node, f"adds a bias of shape {b.shape} to a layer of {n_out} units")
            self.pending[1] = np.broadcast_to(b.reshape(-1), (n_out,)).astype(self.pending[0].dtype)
            return out
        if op == "PRelu":
            slope = self.const(node, ins[1]) if len(ins) > 1 else np.zeros(0)
            if slope.size != 1 or abs(float(slope.reshape(-1)[0]) - LEAKY_SLOPE) > 1e-7:
                what = f"slope {float(slope.reshape(-1)[0]):g}" if slope.size == 1 else f"{slope.size} slopes"
                raise self.unsupported(
                    node, f"has {what}; deltaprop's leaky_relu has one slope, {LEAKY_SLOPE}"
                )
            op = "LeakyRelu"
        if op in _ACTIVATIONS:
            if self.pending is None or self.pending[2] is not None:
                raise self.unsupported(node, "is not right after a layer's MatMul/Gemm (+ Add)")
            act = _ACTIVATIONS[op]
            if op == "LeakyRelu" and abs(attrs.get("alpha", 0.01) - LEAKY_SLOPE) > 1e-7:
                raise self.unsupported(
                    node, f"has slope {attrs['alpha']:g}; deltaprop's leaky_relu has slope {LEAKY_SLOPE}"
                )
            if op == "Softmax" and attrs.get("axis", -1) not in (-1, 1):
                raise self.unsupported(
                    node, f"normalizes along axis {attrs['axis']}; deltaprop's softmax is row by row"
                )
            self.pending[2] = act
            if act == "softmax":
                self.done = True
            return out
        raise self.unsupported(node)


def _attr(a):
    from onnx import helper

    return helper.get_attribute_value(a)


def _plain(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return v.item() if hasattr(v, "item") else v
