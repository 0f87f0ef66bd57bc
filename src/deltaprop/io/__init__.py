"""Files in and out: model files, checkpoints, data sets (and blocks of rows read from disk), input scaling, and the exchange with other
libraries (ONNX, PyTorch, scikit-learn, NumPy ``.npz``). Nothing here does the math: it reads and
writes what the engine computes."""
