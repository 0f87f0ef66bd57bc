"""Rows of a .npy file read by blocks, for training on data larger than memory.

:class:`NpyRows` is a *row source* (see :mod:`deltaprop.train`): it knows where the rows of a 2-d
``.npy`` file start (after the header that ``numpy.save`` writes) and reads rows ``start..stop−1``
with positioned reads (``os.preadv`` into a reused buffer) at ``offset + row · row_bytes``. Nothing is
mapped into the process, so its resident memory stays at the rows asked for. (A ``numpy.memmap``
gathered in a random order would not: every page it touches stays resident until memory runs short,
and the process grows to the file's size; ``bench/scale.py`` measures both.)

A source may stand for a subset of the file's rows (sorted row numbers: a train, validation or test
split); a read then covers the file range that holds the rows asked for, in pieces of at most
``SPAN_BYTES``, and keeps the rows of the subset. With a fitted :class:`~deltaprop.io.preprocessing.Scaler`
attached (:meth:`NpyRows.scaled`), :meth:`NpyRows.read` returns the rows as the network sees them:
``X' = (X − shift)/scale`` in the network's dtype, element by element exactly as
``Scaler.transform`` computes them on the same rows held in memory.

    >>> rows = NpyRows("X.npy")                                    # reads the header only
    >>> scaler = Scaler("standard").fit_blocks(rows.blocks())       # one streaming pass
    >>> source = rows.scaled(scaler, "float32")
    >>> Trainer(net, source, y, shuffle="blocks", batch_size=64).run()
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from deltaprop import fast
from deltaprop.errors import DataError, InputError
from deltaprop.train import BLOCK_ROWS

__all__ = ["NpyRows", "npy_header", "SPAN_BYTES"]

#: The most bytes one positioned read of a subset's rows covers (the buffer a read reuses).
SPAN_BYTES = 8 << 20


def npy_header(path) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, offset of the first row) of a C-ordered numeric .npy file, from its header
    alone; every problem is a DataError that says how to save the array instead."""
    path = Path(path)
    hint = "save it with numpy.save(path, X), X a 2-d array of numbers in C order"
    if not path.is_file():
        raise DataError(f"no such file: {path}" if not path.exists() else f"{path} is not a file", hint)
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # object arrays cannot be mapped, nor unpickled
        raise DataError(f"{path} cannot be read without unpickling or is damaged ({exc})", hint) from None
    except Exception as exc:  # not a NumPy file, a truncated one
        raise DataError(f"{path} is not a readable .npy file ({type(exc).__name__}: {exc})", hint) from None
    if not isinstance(mapped, np.memmap):
        if hasattr(mapped, "close"):
            mapped.close()
        raise DataError(f"{path} is an .npz archive, not a single array", "name it .npz, or save one array "
                        "with numpy.save(path, X)")
    try:
        shape, dtype, offset = tuple(mapped.shape), mapped.dtype, int(mapped.offset)
        fortran = mapped.ndim > 1 and not mapped.flags.c_contiguous
    finally:
        mapped._mmap.close()
        del mapped
    if dtype.kind not in "biuf":
        raise DataError(f"{path} holds {dtype} values, not numbers", hint)
    if len(shape) < 1 or (len(shape) >= 1 and shape[0] == 0):
        raise DataError(f"{path} holds an array of shape {shape}; expected (m ≥ 1 examples, n features)", hint)
    if fortran:
        raise DataError(f"{path} stores its array in Fortran (column) order, so a row is not contiguous on disk",
                        "save it in C order: numpy.save(path, numpy.ascontiguousarray(X))")
    return shape, dtype, offset


class NpyRows:
    """Rows of a .npy file (or a subset of them), read on demand; see the module's docstring.

    ``shape`` is (rows in the subset, features), with images (m, r, c) taken as rows of r·c features;
    ``dtype`` is the file's dtype, or the dtype given to :meth:`scaled`.
    """

    def __init__(self, path, rows=None, *, scaler=None, dtype=None, _header=None):
        self.path = Path(path)
        self._header = _header or npy_header(self.path)
        shape, self.file_dtype, self.offset = self._header
        self.file_rows = int(shape[0])
        self.n_features = int(math.prod(shape[1:])) if len(shape) > 1 else 1
        self.row_bytes = self.n_features * self.file_dtype.itemsize
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows is not None and self.rows.shape[0] and (
                self.rows[0] < 0 or self.rows[-1] >= self.file_rows or np.any(np.diff(self.rows) <= 0)):
            raise InputError(f"rows of {self.path} must be increasing row numbers in 0..{self.file_rows - 1}",
                             "pass sorted, distinct row numbers")
        self.scaler = scaler
        self.out_dtype = None if dtype is None else np.dtype(dtype)
        self._fd = None
        self._buf = None

    # -- what it is ---------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (self.file_rows if self.rows is None else int(self.rows.shape[0]), self.n_features)

    @property
    def dtype(self) -> np.dtype:
        return self.out_dtype if self.out_dtype is not None else self.file_dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        part = "" if self.rows is None else f", {self.shape[0]} of its {self.file_rows} rows"
        scaled = "" if self.scaler is None else f", {self.scaler!r} → {self.dtype.name}"
        return f"NpyRows({str(self.path)!r}{part}, {self.n_features} features, {self.file_dtype.name}{scaled})"

    # -- views -------------------------------------------------------------------------------------
    def subset(self, rows) -> NpyRows:
        """The source of rows ``rows`` (sorted positions in this source)."""
        rows = np.asarray(rows, dtype=np.int64)
        chosen = rows if self.rows is None else self.rows[rows]
        return NpyRows(self.path, chosen, scaler=self.scaler, dtype=self.out_dtype, _header=self._header)

    def scaled(self, scaler, dtype) -> NpyRows:
        """The same rows, read through a fitted ``scaler`` as ``dtype`` (what the network takes)."""
        return NpyRows(self.path, self.rows, scaler=scaler, dtype=dtype, _header=self._header)

    # -- reading -----------------------------------------------------------------------------------
    def raw(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop−1 as stored in the file (a fresh (stop − start, n) array)."""
        m = self.shape[0]
        start, stop = max(0, int(start)), min(m, int(stop))
        count = max(0, stop - start)
        out = np.empty((count, self.n_features), dtype=self.file_dtype)
        if count == 0:
            return out
        if self.rows is None:
            self._pread(start, stop, out)
            return out
        wanted = self.rows[start:stop]
        span = max(1, SPAN_BYTES // max(1, self.row_bytes))
        i = 0
        while i < count:
            r0 = int(wanted[i])
            j = int(np.searchsorted(wanted, r0 + span, side="left"))  # the rows in [r0, r0 + span)
            j = max(j, i + 1)
            r1 = int(wanted[j - 1]) + 1
            piece = self._buffer(r1 - r0)
            self._pread(r0, r1, piece)
            np.take(piece, wanted[i:j] - r0, axis=0, out=out[i:j])
            i = j
        return out

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop−1 as the network takes them: scaled and cast when a scaler is attached,
        checked for NaN and infinities."""
        X = self.raw(start, stop)
        if self.scaler is not None:
            X = self.scaler.transform(X, dtype=self.dtype)
        elif self.out_dtype is not None:
            X = X.astype(self.out_dtype, copy=False)
        if X.dtype.kind == "f" and X.size and not fast.all_finite(X):
            raise InputError(f"{self.path}: rows {start + 1}..{start + X.shape[0]} of this split hold NaN or infinite "
                             "values", "fill or drop missing values before saving the array")
        return X

    def blocks(self, block_rows: int = BLOCK_ROWS, raw: bool = True):
        """The rows block by block (``raw``: as stored; else as :meth:`read` gives them)."""
        get = self.raw if raw else self.read
        for start in range(0, self.shape[0], block_rows):
            yield get(start, start + block_rows)

    def to_array(self) -> np.ndarray:
        """All the rows in memory (as :meth:`read` gives them): for data that fits."""
        return np.concatenate(list(self.blocks(raw=False)), axis=0)

    def _buffer(self, rows: int) -> np.ndarray:
        if self._buf is None or self._buf.shape[0] < rows:
            self._buf = np.empty((rows, self.n_features), dtype=self.file_dtype)
        return self._buf[:rows]

    def _pread(self, r0: int, r1: int, out: np.ndarray) -> None:
        """File rows r0..r1−1 into the C-contiguous ``out``, with positioned reads (no file position
        shared between readers, nothing mapped)."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        view = memoryview(out.reshape(-1).view(np.uint8))
        want, done = view.nbytes, 0
        where = self.offset + r0 * self.row_bytes
        while done < want:
            got = os.preadv(self._fd, [view[done:]], where + done)
            if got == 0:
                raise DataError(f"{self.path} ended early: rows {r0}..{r1 - 1} lie beyond its end",
                                "the file is truncated or was changed while reading; save it again")
            done += got

    # -- lifetime ----------------------------------------------------------------------------------
    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self):
        return {**self.__dict__, "_fd": None, "_buf": None}
