"""Networks in and out of deltaprop, one module per format:

- :mod:`~deltaprop.io.exchange.onnx`: ``to_onnx`` (a graph that takes the raw inputs ``deltaprop predict``
  takes) and ``from_onnx`` (deltaprop's own graphs and skl2onnx's scikit-learn MLPs);
- :mod:`~deltaprop.io.exchange.torch`: ``to_torch``/``from_torch`` (``nn.Sequential``) and the
  ``export --to torch`` directory (``model.safetensors`` + ``model.py``);
- :mod:`~deltaprop.io.exchange.sklearn`: ``from_sklearn`` (scikit-learn's and deltaprop's MLP estimators);
- :mod:`~deltaprop.io.exchange.npz`: ``to_npz``, the weights as plain NumPy arrays;
- :mod:`~deltaprop.io.exchange.common`: what they share (the scaling as arrays, building the Network).

Each imports its library on first use (:func:`deltaprop.io.optional.need`), so ``import deltaprop``
stays NumPy-only.
"""
