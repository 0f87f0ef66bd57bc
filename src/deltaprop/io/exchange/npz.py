"""NumPy out: the weights as plain arrays in one ``.npz`` file, for code that has NumPy and nothing else.

Arrays (all loadable with ``numpy.load(path)``, no pickle):

    W1, b1, ..., WL, bL     W_l (n_l, n_{l−1}), b_l (n_l,):  Z_l = A_{l−1} W_lᵀ + b_l
    activations             (L,) strings, g_1 .. g_L (relu, tanh, sigmoid, leaky_relu 0.01, softmax,
                            identity, exp)
    loss                    () string
    shift, scale            (n_0,) the input scaling X' = (X − shift)/scale (absent when the model has none)
    target_mean, target_std (n_L,) a regression trained on standardised targets: y = A_L · target_std +
                            target_mean, in the targets' units (absent otherwise)
    classes                 (K,) strings (classifiers)
    meta                    () string: ``net.meta`` as JSON
"""

from __future__ import annotations

import io
import json
from os import PathLike
from typing import TYPE_CHECKING

import numpy as np

from deltaprop.errors import ModelFileError
from deltaprop.io.exchange.common import class_names, jsonable, need_network, scaling_of, target_scaling_of

if TYPE_CHECKING:
    from deltaprop.model import Network

__all__ = ["to_npz"]


def to_npz(net: Network, path: str | PathLike[str], *, scaling: bool = True) -> None:
    """Write the arrays listed above to ``path`` atomically (``scaling=False`` leaves out shift and scale)."""
    net = need_network(net, "to_npz")
    from deltaprop.io.modelfile import atomic_write

    arrays = {}
    for l, layer in enumerate(net.layers, 1):
        arrays[f"W{l}"], arrays[f"b{l}"] = layer.W, layer.b
    arrays["activations"] = np.array(net.activations)
    arrays["loss"] = np.array(net.loss.name)
    affine = scaling_of(net) if scaling else None
    if affine is not None:
        arrays["shift"], arrays["scale"] = (np.broadcast_to(a, (net.sizes[0],)).copy() for a in affine)
    target = target_scaling_of(net)
    if target is not None:
        arrays["target_mean"], arrays["target_std"] = target
    classes = class_names(net)
    if classes is not None:
        arrays["classes"] = np.array(classes)
    arrays["meta"] = np.array(json.dumps(jsonable(net.meta), sort_keys=True))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    try:
        atomic_write(path, buf.getvalue())
    except OSError as exc:
        raise ModelFileError(
            f"cannot write {path}: {exc.strerror or exc}", "check that the directory exists and is writable"
        ) from None
