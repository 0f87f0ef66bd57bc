"""What every exporter and importer shares: a network as a plain list of steps, and back.

A deltaprop model that ``deltaprop predict`` runs is

    X' = (X − shift) / scale                       the stored input scaling (``net.meta["scaler"]``)
    Z_l = A_{l−1} W_lᵀ + b_l,  A_l = g_l(Z_l)      l = 1..L, A_0 = X'

    y = A_L · std + mean                           a regression's target scaling, ``meta["target_scaling"]``

with W_l (n_l, n_{l−1}). :func:`scaling_of` gives (shift, scale) in the network's dtype, so that an
exported graph computes the scaling in the same arithmetic as :meth:`Scaler.transform`;
:func:`target_scaling_of` gives (mean, std) in the network's dtype, the arithmetic of
:meth:`Network.decide`; :func:`assemble` builds a Network (and its ``meta``) from what an importer read.
"""

from __future__ import annotations

import numpy as np

from deltaprop.errors import ConfigError, InputTypeError
from deltaprop.io.preprocessing import Scaler
from deltaprop.model import Network

__all__ = [
    "HIDDEN",
    "LEAKY_SLOPE",
    "OUTPUTS",
    "assemble",
    "class_names",
    "jsonable",
    "scaler_dict",
    "scaling_of",
    "target_scaling_dict",
    "target_scaling_of",
]

#: The output activations deltaprop pairs with a loss, and the hidden activations it supports.
OUTPUTS = ("softmax", "sigmoid", "identity", "exp")
HIDDEN = ("relu", "tanh", "sigmoid", "leaky_relu", "identity")
#: The one leaky ReLU slope deltaprop's model file can hold.
LEAKY_SLOPE = 0.01


def need_network(net, what: str) -> Network:
    """``net`` itself when it is a :class:`Network`; otherwise an error that says how to get one."""
    if isinstance(net, Network):
        return net
    raise InputTypeError(
        f"{what} needs a deltaprop Network, got a {type(net).__name__}",
        "a fitted estimator becomes one with deltaprop.from_sklearn(est) (or est.to_network()), a model "
        "file with deltaprop.load(path), a PyTorch module with deltaprop.from_torch(module, output=...)",
    )


def scaling_of(net: Network):
    """(shift, scale) of the network's stored input scaling as arrays of the network's dtype
    ((n_x,) or scalars), or None when it has none (or ``none``): X' = (X − shift) / scale."""
    spec = net.meta.get("scaler") if isinstance(net.meta, dict) else None
    if not spec:
        return None
    scaler = Scaler.from_dict(spec)
    if scaler.kind == "none":
        return None
    if scaler.n_features is not None and scaler.n_features != net.sizes[0]:
        raise ConfigError(
            f"the model's input scaling is for {scaler.n_features} features but the network takes "
            f"{net.sizes[0]}",
            "the model's meta is inconsistent; retrain or drop net.meta['scaler']",
        )
    return np.asarray(scaler.shift, dtype=net.dtype), np.asarray(scaler.scale, dtype=net.dtype)


def target_scaling_of(net: Network):
    """(mean, std) (n_L,) of a regression network trained on standardised targets, in the network's
    dtype, or None: its predictions are A_L · std + mean, in the targets' units (:meth:`Network.decide`)."""
    spec = net.meta.get("target_scaling") if isinstance(net.meta, dict) else None
    if not spec or net.is_classifier:
        return None
    n = net.sizes[-1]
    try:
        mean, std = (np.broadcast_to(np.asarray(spec[k], dtype=net.dtype).reshape(-1), (n,)).copy()
                     for k in ("mean", "std"))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"the model's target scaling {spec!r} is not a mean and a std for its {n} output(s)",
            "the model's meta is inconsistent; retrain it",
        ) from None
    return mean, std


def target_scaling_dict(mean, std, n_out: int, stored=None, dtype=None) -> dict:
    """``meta["target_scaling"]`` from the numbers another format holds (y = A·std + mean), one entry per
    output. ``stored`` (what the model's meta said) is kept when it rounds to the same numbers in
    ``dtype``: the float64 values then survive a float32 graph."""
    def column(values, default, dtype=np.float64):
        return np.broadcast_to(np.asarray(default if values is None else values, dtype).reshape(-1), (n_out,))

    read = {"mean": column(mean, 0.0), "std": column(std, 1.0)}
    if isinstance(stored, dict) and dtype is not None:
        try:
            kept = {k: column(stored[k], None) for k in read}
            if all(np.array_equal(kept[k].astype(dtype), read[k].astype(dtype)) for k in read):
                read = kept
        except (KeyError, TypeError, ValueError):
            pass
    return {k: [float(v) for v in values] for k, values in read.items()}


def scaler_dict(shift, scale, n_features: int, kind: str | None = None) -> dict:
    """The ``Scaler.to_dict()`` description of X' = (X − shift) / scale read from another format.

    A scalar scale with no shift is ``divide``; anything else is a per-column affine map, stored as
    ``kind`` (default ``standard``: the same map whatever produced it)."""
    shift = (
        np.zeros(n_features)
        if shift is None
        else np.broadcast_to(
            np.asarray(shift, np.float64).reshape(-1) if np.ndim(shift) else shift, (n_features,)
        )
    )
    scale_arr = np.ones(n_features) if scale is None else np.asarray(scale, np.float64)
    if scale_arr.size == 1 and not shift.any():
        by = float(scale_arr.reshape(-1)[0])
        if by == 1.0:
            return {"kind": "none", "n_features": n_features}
        if not by > 0:
            raise ConfigError(
                f"the input scaling divides by {by}", "deltaprop's scaling divides by numbers > 0"
            )
        return {"kind": "divide", "by": by, "n_features": n_features}
    scale_arr = np.broadcast_to(scale_arr.reshape(-1) if scale_arr.ndim else scale_arr, (n_features,))
    if not (scale_arr > 0).all():
        raise ConfigError(
            "the input scaling divides by a number ≤ 0", "deltaprop's scaling divides by numbers > 0"
        )
    kind = kind if kind in ("standard", "minmax") else "standard"
    return {
        "kind": kind,
        "n_features": n_features,
        "shift": [float(v) for v in shift],
        "scale": [float(v) for v in scale_arr],
    }


def assemble(
    weights,
    activations,
    *,
    classes=None,
    scaler: dict | None = None,
    meta: dict | None = None,
    source: dict | None = None,
    target_scaling: dict | None = None,
    what: str = "the model",
) -> Network:
    """A Network from ``[(W_l, b_l)]`` (W_l (n_l, n_{l−1})) and one activation per layer, with ``meta``
    holding the task, the class names, the input scaling, the target scaling a regression's outputs are
    scaled back with (``target_scaling``: what the other format computes after the network, never what
    ``meta`` merely says) and where it came from (``source``).

    The loss is the one that pairs with the output activation; anything else is refused with an error
    that names what ``what`` ended in and what deltaprop supports."""
    activations = list(activations)
    for l, act in enumerate(activations[:-1], 1):
        if act not in HIDDEN:
            raise ConfigError(
                f"{what} has {act} after layer {l}, and deltaprop supports it only as the output",
                f"hidden activations deltaprop runs: {', '.join(HIDDEN)}",
            )
    if activations[-1] not in OUTPUTS:
        raise ConfigError(
            f"{what} ends in {activations[-1]}, which deltaprop does not pair with a loss",
            f"the output must be {', '.join(OUTPUTS)} (identity for regression, exp for Poisson counts)",
        )
    net = Network.from_weights(weights, activations)
    net.meta = dict(meta or {})
    net.meta["task"] = "classification" if net.is_classifier else "regression"
    if classes is not None:
        classes = [c.item() if hasattr(c, "item") else c for c in classes]
        k = net.sizes[-1]
        expected = 2 if (k == 1 and net.activations[-1] == "sigmoid") else k
        if len(classes) != expected:
            raise ConfigError(
                f"{what} names {len(classes)} classes but its output layer gives {expected}",
                "pass as many class names as the network has classes",
            )
        net.meta["classes"] = classes
    elif not net.is_classifier:
        net.meta.pop("classes", None)
    if scaler is not None and scaler.get("kind") != "none":
        net.meta["scaler"] = Scaler.from_dict(scaler).to_dict()
    else:
        net.meta.pop("scaler", None)
    net.meta.pop("target_scaling", None)
    if target_scaling is not None:
        if net.is_classifier:
            raise ConfigError(
                f"{what} scales the outputs of a classifier", "only a regression's values are scaled back"
            )
        net.meta["target_scaling"] = target_scaling
    if source:
        net.meta["source"] = source
    return net


def class_names(net):
    """The class names as strings ("0".."K−1" for a classifier without them); None for a regression."""
    classes = net.meta.get("classes")
    if classes:
        return [str(c) for c in classes]
    if not net.is_classifier:
        return None
    k = net.sizes[-1]
    return [str(i) for i in range(2 if k == 1 else k)]


def jsonable(value):
    """net.meta as plain JSON (NumPy numbers and arrays converted; non-finite numbers as None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
