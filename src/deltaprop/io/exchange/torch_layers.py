"""The two PyTorch modules deltaprop adds: the stored input scaling as a first layer, and a regression's
target scaling (y = A·std + mean) as a last one.

Imported only after PyTorch is (see :mod:`deltaprop.io.exchange.torch`): it subclasses ``nn.Module``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["InputScaling", "TargetScaling"]


class InputScaling(nn.Module):
    """x' = (x − shift) / scale, column by column: the input scaling deltaprop fitted on the training rows.

    ``shift`` and ``scale`` are buffers (n_features,), saved in the state_dict; ``kind`` (standard,
    minmax, divide) says which scaling produced them.
    """

    def __init__(self, n_features: int, kind: str = "standard", dtype=torch.float32):
        super().__init__()
        self.kind = kind
        self.register_buffer("shift", torch.zeros(n_features, dtype=dtype))
        self.register_buffer("scale", torch.ones(n_features, dtype=dtype))

    def forward(self, x):
        return (x - self.shift) / self.scale

    def extra_repr(self) -> str:
        return f"{self.shift.shape[0]}, kind={self.kind!r}"


class TargetScaling(nn.Module):
    """y = A · std + mean, column by column: a regression network trained on standardised targets gives
    its values in the targets' units (``meta["target_scaling"]``; :meth:`deltaprop.Network.decide`).

    ``mean`` and ``std`` are buffers (n_outputs,), saved in the state_dict.
    """

    def __init__(self, n_outputs: int, dtype=torch.float32):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_outputs, dtype=dtype))
        self.register_buffer("std", torch.ones(n_outputs, dtype=dtype))

    def forward(self, a):
        return a * self.std + self.mean

    def extra_repr(self) -> str:
        return f"{self.mean.shape[0]}"
