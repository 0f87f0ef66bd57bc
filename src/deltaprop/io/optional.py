"""Optional libraries: imported on first use, with an error that names the pip command when missing.

``import deltaprop`` needs NumPy alone; ONNX, ONNX Runtime, PyTorch and scikit-learn are asked for
only by the functions that use them.
"""

from __future__ import annotations

import importlib

from deltaprop.errors import ConfigError

__all__ = ["PIP", "need"]

#: How to install each optional library (PyTorch: the CPU wheel, never pulled in by deltaprop's extras).
PIP = {
    "onnx": "pip install 'deltaprop[onnx]'   (or: pip install onnx onnxruntime)",
    "onnxruntime": "pip install 'deltaprop[onnx]'   (or: pip install onnxruntime)",
    "torch": "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
    "sklearn": "pip install 'deltaprop[cli]'   (or: pip install scikit-learn)",
    "skl2onnx": "pip install skl2onnx",
}


def need(module: str, purpose: str):
    """``import module`` for ``purpose`` (what the caller is doing, e.g. "ONNX export"), or a
    ConfigError that says which package is missing and the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = module.split(".")[0]
        raise ConfigError(
            f"{purpose} needs the {name} package, which cannot be imported ({exc})",
            f"install it with: {PIP.get(name, 'pip install ' + name)}",
        ) from None
