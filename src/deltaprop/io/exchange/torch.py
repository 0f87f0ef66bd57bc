"""PyTorch out and in: ``nn.Sequential`` of ``Linear`` layers and activations.

``nn.Linear`` stores ``weight`` as (n_out, n_in) and computes x Wᵀ + b: deltaprop's W_l and
Z = A_prev W_lᵀ + b_l, number for number. The activations map one to one (ReLU, Tanh, Sigmoid,
LeakyReLU with slope 0.01, Identity; Softmax(dim=−1) only at the output, and LogSoftmax there read as
softmax).

- :func:`to_torch`: the network (and, first, its stored input scaling as :class:`InputScaling`; last, a
  regression's target scaling y = A·std + mean as :class:`TargetScaling`), with or without the output
  activation (``logits=True`` gives Z_L, for ``CrossEntropyLoss`` and
  ``BCEWithLogitsLoss``).
- :func:`from_torch`: a Sequential back to a Network; a module that ends in ``Linear`` gives logits,
  so ``output=`` says what they are.
- :func:`write_torch_dir`: ``DIR/model.safetensors`` (the state_dict) and ``DIR/model.py`` (the lines
  that rebuild the Sequential and load it); written with NumPy alone, so exporting needs no PyTorch.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.errors import ConfigError, ModelFileError
from deltaprop.io.exchange.common import (
    LEAKY_SLOPE,
    OUTPUTS,
    assemble,
    need_network,
    scaler_dict,
    scaling_of,
    target_scaling_dict,
    target_scaling_of,
)
from deltaprop.io.optional import need

if TYPE_CHECKING:
    from torch import nn

    from deltaprop.model import Network

__all__ = ["from_torch", "plan", "to_torch", "write_torch_dir"]

_MODULES = {
    "relu": "nn.ReLU()",
    "tanh": "nn.Tanh()",
    "sigmoid": "nn.Sigmoid()",
    "leaky_relu": f"nn.LeakyReLU({LEAKY_SLOPE})",
    "softmax": "nn.Softmax(dim=-1)",
    "identity": "nn.Identity()",
}
_SUPPORTED = ("Linear, ReLU, Tanh, Sigmoid, LeakyReLU (slope 0.01), Identity, Dropout, Softmax or LogSoftmax (last, dim=-1), "
              "Flatten (first)")


def plan(net, logits: bool = False, scaling: bool = True) -> list[tuple]:
    """The Sequential as data: ("scaling", shift (n,), scale (n,), kind), ("linear", W, b), ("act", name),
    ("target", mean (n_L,), std (n_L,)).

    Hidden identity layers get no module; an identity output gets ``nn.Identity()`` (values, not
    logits); a regression trained on standardised targets ends in its target scaling, so that the module
    gives values in the targets' units; ``logits=True`` drops the output activation and the target
    scaling (the module returns Z_L)."""
    if net.activations[-1] not in _MODULES and not logits:
        raise ConfigError(
            f"the network ends in {net.activations[-1]} (the {net.loss.name} loss's output), which the "
            "PyTorch export does not write",
            "export to ONNX or NumPy (--to onnx, --to npz), or leave the output out with logits=True "
            "(--logits): the module then returns Z_L, and the prediction is torch.exp(Z_L)",
        )
    steps = []
    affine = scaling_of(net) if scaling else None
    if affine is not None:
        n = net.sizes[0]
        shift, scale = (np.broadcast_to(a, (n,)).astype(net.dtype) for a in affine)
        steps.append(("scaling", shift, scale, net.meta["scaler"]["kind"]))
    L = len(net.layers)
    for l, layer in enumerate(net.layers, 1):
        steps.append(("linear", layer.W, layer.b))
        act = layer.activation.name
        if l == L and logits:
            continue
        if act != "identity" or l == L:
            steps.append(("act", act))  # a last Identity says "values, not logits" to from_torch
    target = None if logits else target_scaling_of(net)
    if target is not None:
        steps.append(("target", *target))
    return steps


def to_torch(net: Network, logits: bool = False, *, scaling: bool = True) -> nn.Sequential:
    """An ``nn.Sequential`` that computes what ``net`` does, in its dtype.

    ``scaling=True`` (the default) puts the model's stored input scaling first, as :class:`InputScaling`,
    so the module takes the raw inputs ``deltaprop predict`` takes; ``scaling=False`` takes what
    ``net.forward`` takes. ``logits=True`` leaves out the output activation: the module returns Z_L.
    """
    net = need_network(net, "to_torch")
    torch = need("torch", "converting to PyTorch")
    from torch import nn

    from deltaprop.io.exchange.torch_layers import InputScaling, TargetScaling

    dtype = {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}[net.dtype]
    modules = []
    for step in plan(net, logits, scaling):
        if step[0] == "scaling":
            _, shift, scale, kind = step
            m = InputScaling(len(shift), kind, dtype)
            m.shift.copy_(torch.from_numpy(np.array(shift)))
            m.scale.copy_(torch.from_numpy(np.array(scale)))
        elif step[0] == "target":
            _, mean, std = step
            m = TargetScaling(len(mean), dtype)
            m.mean.copy_(torch.from_numpy(np.array(mean)))
            m.std.copy_(torch.from_numpy(np.array(std)))
        elif step[0] == "linear":
            _, W, b = step
            m = nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.array(W)))
                m.bias.copy_(torch.from_numpy(np.array(b)))
        else:
            m = {
                "relu": nn.ReLU,
                "tanh": nn.Tanh,
                "sigmoid": nn.Sigmoid,
                "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
                "softmax": lambda: nn.Softmax(dim=-1),
                "identity": nn.Identity,
            }[step[1]]()
        modules.append(m)
    return nn.Sequential(*modules).eval()


def from_torch(module: nn.Module, output: str | None = None, *, classes: Sequence | None = None) -> Network:
    """A Network from an ``nn.Sequential`` of ``Linear`` layers and activations.

    A module that ends in ``Linear`` returns logits: ``output="softmax"`` makes it a classifier,
    ``"sigmoid"`` a binary (one unit) or multi-label one, ``"identity"`` a regression. A module that
    ends in Softmax or Sigmoid says so itself (``output``, if given, must agree); one that ends in
    LogSoftmax (as with ``nn.NLLLoss``) becomes a softmax classifier, whose probabilities are the
    exponentials of the module's outputs (a warning says so, and the model's source records it). A leading
    :class:`InputScaling` becomes the model's input scaling, a trailing :class:`TargetScaling` its target
    scaling. ``classes`` names the classes.
    """
    torch = need("torch", "reading a PyTorch module")
    from torch import nn

    children = list(_flatten(module, nn))
    target = None
    if children and type(children[-1]).__name__ == "TargetScaling" and hasattr(children[-1], "mean"):
        last_module = children.pop()
        mean, std = (t.detach().cpu().numpy() for t in (last_module.mean, last_module.std))
        target = target_scaling_dict(mean, std, int(mean.shape[0]))
    weights, activations = [], []
    scaler = None
    flattened = False
    pending = None  # [W, b, activation]
    for i, child in enumerate(children):
        name = type(child).__name__
        if isinstance(child, nn.Linear):
            if pending is not None:
                weights.append(pending[:2])
                activations.append(pending[2] or "identity")
            W = child.weight.detach().cpu().numpy()
            if W.dtype not in (np.float32, np.float64):
                raise ConfigError(
                    f"layer {i} ({child}) holds {child.weight.dtype} weights",
                    "convert the module to float32 or float64 first: module.float()",
                )
            b = child.bias.detach().cpu().numpy() if child.bias is not None else np.zeros(W.shape[0], W.dtype)
            pending = [W.copy(), b.astype(W.dtype).copy(), None]
            continue
        if name == "InputScaling" and i == 0 and hasattr(child, "shift") and hasattr(child, "scale"):
            shift, scale = (t.detach().cpu().numpy().astype(np.float64) for t in (child.shift, child.scale))
            scaler = scaler_dict(shift, scale, int(shift.shape[0]), getattr(child, "kind", None))
            if getattr(child, "kind", None) == "divide" and not shift.any():
                scaler = scaler_dict(None, float(scale[0]), int(shift.shape[0]))
            continue
        if (
            isinstance(child, nn.Identity)
            and i == len(children) - 1
            and pending is not None
            and pending[2] is None
        ):
            pending[2] = "identity"  # an explicit identity output: the module returns values, not logits
            continue
        if isinstance(child, (nn.Identity, nn.Dropout)):
            continue  # no-ops at inference
        if isinstance(child, nn.Flatten) and pending is None and scaler is None and child.start_dim == 1 \
                and child.end_dim == -1:
            # Images (m, 28, 28) flattened into rows (m, 784): deltaprop's inputs are those rows already.
            flattened = True
            continue
        act = _activation(child, nn, i)
        if pending is None or pending[2] is not None:
            where = "before any Linear layer" if pending is None else f"right after {pending[2]}"
            raise ConfigError(
                f"layer {i} ({child}) comes {where}; deltaprop reads Linear layers each followed by "
                "at most one activation",
                f"supported layers: {_SUPPORTED}",
            )
        pending[2] = act
    if pending is None:
        raise ConfigError(
            f"the module holds no Linear layer ({type(module).__name__})",
            f"pass an nn.Sequential of: {_SUPPORTED}",
        )
    last = pending[2]
    if last is None:
        if output is None:
            raise ConfigError(
                "the module ends in Linear, so it returns logits; deltaprop needs to know what they are",
                "pass output='softmax' (classes), 'sigmoid' (binary or multi-label) or 'identity' "
                "(regression)",
            )
        last = _output_name(output)
    elif output is not None and _output_name(output) != last:
        raise ConfigError(
            f"the module ends in {last} but output={output!r} was passed",
            "leave output out when the module ends in its output activation",
        )
    weights.append(pending[:2])
    activations.append(last)
    source = {"format": "pytorch", "module": type(module).__name__, "torch": torch.__version__}
    if isinstance(children[-1], nn.LogSoftmax):
        source["output"] = "the module's LogSoftmax read as softmax: probabilities = exp(the module's outputs)"
        warnings.warn("the module ends in LogSoftmax: the deltaprop model gives the class probabilities, the "
                      "exponentials of the module's log-probabilities (the same predicted classes)", stacklevel=2)
    if flattened:
        source["inputs"] = "rows: the module's leading Flatten is done by passing X as (m, features)"
    if target is not None and len(target["mean"]) != weights[-1][0].shape[0]:
        raise ConfigError(
            f"the module's TargetScaling is for {len(target['mean'])} outputs but its last layer gives "
            f"{weights[-1][0].shape[0]}",
            "the module is inconsistent; export it again",
        )
    return assemble(weights, activations, classes=classes, scaler=scaler, source=source,
                    target_scaling=target, what="the module")


def _flatten(module, nn):
    if isinstance(module, nn.Sequential):
        for child in module.children():
            yield from _flatten(child, nn)
    elif isinstance(module, nn.Module) and not list(module.children()):
        yield module  # a leaf: Linear, an activation, InputScaling, or something from_torch names and refuses
    else:
        raise ConfigError(
            f"cannot read a {type(module).__name__} as a chain of layers",
            f"pass an nn.Sequential of: {_SUPPORTED}",
        )


def _activation(child, nn, i) -> str:
    if isinstance(child, nn.ReLU):
        return "relu"
    if isinstance(child, nn.Tanh):
        return "tanh"
    if isinstance(child, nn.Sigmoid):
        return "sigmoid"
    if isinstance(child, nn.LeakyReLU):
        if abs(child.negative_slope - LEAKY_SLOPE) > 1e-12:
            raise ConfigError(
                f"layer {i} is LeakyReLU with slope {child.negative_slope:g}; deltaprop's leaky_relu "
                f"has slope {LEAKY_SLOPE}",
                "use nn.LeakyReLU(0.01)",
            )
        return "leaky_relu"
    if isinstance(child, (nn.Softmax, nn.LogSoftmax)):  # log-probabilities: the same classifier
        if child.dim not in (None, -1, 1):
            raise ConfigError(
                f"layer {i} is {type(child).__name__}(dim={child.dim}); deltaprop's softmax is row by row",
                f"use nn.{type(child).__name__}(dim=-1)",
            )
        return "softmax"
    raise ConfigError(
        f"layer {i} is {type(child).__name__} ({child}), which deltaprop does not support",
        f"supported layers: {_SUPPORTED}",
    )


def _output_name(output: str) -> str:
    from deltaprop.activations import canonical_name

    name = canonical_name(output)
    if name not in OUTPUTS:
        raise ConfigError(
            f"output={output!r} is not an output deltaprop pairs with a loss",
            "use 'softmax', 'sigmoid' or 'identity'",
        )
    return name


# -- the export directory -----------------------------------------------------------------------------
def write_torch_dir(net, directory, logits: bool = False, scaling: bool = True) -> list[Path]:
    """Write ``directory/model.safetensors`` (the Sequential's state_dict: ``0.shift``, ``0.scale`` for
    the input scaling, ``k.weight``, ``k.bias`` for each Linear) and ``directory/model.py`` (the lines
    that rebuild the Sequential and load the weights). Returns the two paths.

    Each file is written atomically, the weights first, and both carry one export id (a hash of the
    weights and the layers): ``load()`` refuses a model.safetensors written by another export, so an
    export cut short between the two files (new weights beside an old model.py) cannot build the old
    layers around the new weights in silence."""
    from deltaprop.io.modelfile import atomic_write, digest, write_tensors

    directory = Path(os.fspath(directory))
    if directory.exists() and not directory.is_dir():
        raise ConfigError(
            f"{directory} is a file; --to torch writes a directory (model.safetensors + model.py)",
            "pass -o DIR, a directory that does not exist yet or may be written into",
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFileError(
            f"cannot create {directory}: {exc.strerror or exc}", "check the path and its permissions"
        ) from None
    tensors, lines = {}, []
    for k, step in enumerate(plan(net, logits, scaling)):
        if step[0] == "scaling":
            tensors[f"{k}.shift"], tensors[f"{k}.scale"] = step[1], step[2]
            lines.append(f"InputScaling({len(step[1])}, {step[3]!r})")
        elif step[0] == "target":
            tensors[f"{k}.mean"], tensors[f"{k}.std"] = step[1], step[2]
            lines.append(f"TargetScaling({len(step[1])})")
        elif step[0] == "linear":
            tensors[f"{k}.weight"], tensors[f"{k}.bias"] = step[1], step[2]
            lines.append(f"nn.Linear({step[1].shape[1]}, {step[1].shape[0]})")
        else:
            lines.append(_MODULES[step[1]])
    weights = directory / "model.safetensors"
    code = directory / "model.py"
    export_id = digest({"layers": lines}, tensors)
    write_tensors(weights, tensors, {"format": "pt", "producer": "deltaprop", "export_id": export_id})
    scaled = scaling and scaling_of(net) is not None
    target = not logits and target_scaling_of(net) is not None
    atomic_write(code, _model_py(net, lines, logits, scaled, target, export_id).encode("utf-8"))
    return [weights, code]


def _model_py(net, lines, logits, scaled, target=False, export_id="") -> str:
    from deltaprop import __version__

    dtype = "torch.float64" if net.dtype == np.float64 else "torch.float32"
    classes = net.meta.get("classes")
    out = (
        "logits Z_L (no output activation)"
        if logits
        else "class probabilities"
        if net.is_classifier
        else "predicted values"
    )
    inputs = "raw inputs, as deltaprop predict takes them" if scaled else "inputs as the network sees them"
    layer_lines = "".join(f"        {line},\n" for line in lines)
    scaling_class = (
        '''

class InputScaling(nn.Module):
    """x' = (x - shift) / scale, column by column: the input scaling deltaprop fitted on the training rows."""

    def __init__(self, n_features, kind="standard"):
        super().__init__()
        self.kind = kind
        self.register_buffer("shift", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def forward(self, x):
        return (x - self.shift) / self.scale
'''
        if scaled
        else ""
    )
    if target:
        out += " in the targets' units (the network learnt them standardised: y = A * std + mean)"
        scaling_class += '''

class TargetScaling(nn.Module):
    """y = a * std + mean, column by column: the network learnt standardised targets."""

    def __init__(self, n_outputs):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_outputs))
        self.register_buffer("std", torch.ones(n_outputs))

    def forward(self, a):
        return a * self.std + self.mean
'''
    return f'''"""{net!r}, exported by deltaprop {__version__}.

    model = load()            # nn.Sequential, in eval mode
    y = model(x)              # x: {inputs}, shape (m, {net.sizes[0]}); y: {out}

Needs torch and safetensors (pip install safetensors).
"""

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

CLASSES = {json.dumps([str(c) for c in classes]) if classes else None}
EXPORT_ID = "{export_id}"  # also in model.safetensors' metadata: the two files of one export
{scaling_class}

def build():
    """The network's layers, in order; W of each Linear is (n_out, n_in), as in deltaprop."""
    return nn.Sequential(
{layer_lines}    ).to({dtype})


def load(path=Path(__file__).with_name("model.safetensors")):
    with safe_open(str(path), framework="pt") as f:
        written = (f.metadata() or {{}}).get("export_id")
    if written is not None and written != EXPORT_ID:  # weights saved elsewhere carry no id: loaded
        raise RuntimeError(f"{{path}} was written by another export than this model.py (an export cut short "
                           "between its two files?): export the model again")
    model = build()
    model.load_state_dict(load_file(str(path)))
    return model.eval()


if __name__ == "__main__":
    print(load())
'''
