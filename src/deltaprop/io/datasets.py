"""Data sets from files already on this machine: digits, IDX (MNIST, Fashion-MNIST), CSV, NPZ.

Nothing here downloads anything. Every loader returns rows as examples:

    X (m, n) float (IDX images: uint8 by default, flattened from (m, rows, cols)),  y (m,)

:func:`resolve` turns a ``--data`` spec into a :class:`Dataset` with a train and a test split; data
without a fixed test split (digits, CSV, NPZ without ``X_test``) is split 70/30 per class with a
seeded ``numpy.random.Generator``. Every problem is a :class:`~deltaprop.errors.DataError` that names
the file and says what was expected.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import os
import re
import shlex
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deltaprop.errors import DataError, InputError
from deltaprop.io.files import check_memory, check_regular, open_regular, safe_text, short, shown
from deltaprop.targets import encode_targets
from deltaprop.train import train_test_split

__all__ = [
    "Dataset", "resolve", "SPEC_FORMS", "absolute_spec", "fingerprint", "names_a_path",
    "load_digits", "load_fashion_mnist", "load_idx_dataset", "read_idx", "write_idx",
    "load_csv", "read_csv", "CSVTable", "match_columns", "column_order", "headerless_note",
    "unnamed_model_note",
    "detect_delimiter", "parse_delimiter", "file_fingerprint", "TABLE_SUFFIXES",
    "changed_file", "load_npz", "load_inputs", "encode_labels", "split",
    "FASHION_MNIST_DIR", "FASHION_MNIST_CLASSES",
]

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist/"
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_MNIST_HINT = ("install it with `sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist` "
                      "or pass `fashion-mnist:DIR`")

# Delimited text tables (comma, semicolon or tab, detected): read by read_csv whatever the name says.
TABLE_SUFFIXES = (".csv", ".tsv")

SPEC_FORMS = ("digits", "fashion-mnist", "fashion-mnist:DIR", "mnist:DIR", "idx:DIR", "PATH.csv (or .tsv)", "PATH.npz",
              "PATH.npy (with --target y.npy)", "DIR (holding X.npy, y.npy[, X_test.npy, y_test.npy])")


# -- the Dataset ----------------------------------------------------------------------------------
@dataclass
class Dataset:
    """A train/test split and what is known about it.

    ``y`` holds class indices 0..K−1 (int64) when ``class_names`` is a list of K names, and target
    values (float64) for regression (``class_names`` None). ``image_shape`` is (rows, cols) for image
    data sets, None otherwise. ``scaling`` is the suggested input scaling (a
    :meth:`deltaprop.io.preprocessing.Scaler.from_spec` string), to be fitted on ``X_train`` only.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple | None = None
    class_names: list | None = None
    scaling: str = "standard"
    feature_names: list | None = None
    target_name: str | None = None
    notes: list = field(default_factory=list)  # what the reader decided on its own, to announce
    source: dict | None = None  # a file's absolute path, size and hash: see file_fingerprint
    reading: dict | None = None  # how a CSV file was read (delimiter, header, columns left out): CSVTable

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @property
    def task(self) -> str:
        return "regression" if self.class_names is None else "classification"

    def __repr__(self) -> str:
        kind = f"{self.n_classes} classes" if self.class_names is not None else "regression"
        return (f"Dataset({self.name!r}, {self.X_train.shape[0]} train + {self.X_test.shape[0]} test rows, "
                f"{self.n_features} features, {kind})")


# -- digits ---------------------------------------------------------------------------------------
def load_digits():
    """scikit-learn's bundled 8×8 digits (no download): X (1797, 64) float64 in 0..16, y (1797,) int64."""
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError:
        raise DataError("the digits data set comes with scikit-learn, which is not installed",
                        "pip install scikit-learn") from None
    X, y = _sk_load_digits(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


# -- IDX ------------------------------------------------------------------------------------------
# Magic number: two zero bytes, a type code, the number of dimensions. Data is big-endian.
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_CODES = {np.dtype(dt).newbyteorder("=").str if dt.itemsize > 1 else dt.str: code
              for code, dt in _IDX_TYPES.items()}


def _existing_file(path, hint: str) -> Path:
    """``path`` as a Path when it is a regular file, or a DataError that says it is missing, a directory,
    or a FIFO or device (which would block or never end)."""
    return check_regular(path, "file", DataError, hint)


def read_idx(path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` or raw), in native byte order.

    Layout: magic ``00 00 TT D`` (TT the type code: 08 uint8, 09 int8, 0B int16, 0C int32, 0D float32,
    0E float64; D the number of dimensions), D big-endian uint32 sizes, then the big-endian data.
    The header is read first: the size it declares is compared with the file (or, compressed, read no
    further than it) and with the memory left before the data is read.
    """
    path = _existing_file(path, "pass the path of an IDX file")
    gz = path.name.endswith(".gz")
    try:
        with open_regular(path, "IDX file", DataError) as raw_file:
            size = os.fstat(raw_file.fileno()).st_size
            f = gzip.GzipFile(fileobj=raw_file, mode="rb") if gz else raw_file
            head = f.read(4)
            if len(head) < 4:
                raise DataError(f"{shown(path)} is not an IDX file: {len(head)} bytes, too short for the 4-byte "
                                "magic number", "IDX files start with 00 00, a type code and the number of dimensions")
            if head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
                if all(32 <= c < 127 or c in b"\t\r\n" for c in head) and not gz:
                    raise DataError(f"{shown(path)} is text, not an IDX file (it starts with {head.decode()!r})",
                                    "a table of numbers needs a .csv or .tsv name (comma, semicolon or tab); .npy, "
                                    ".npz and IDX files are read by their names too")
                raise DataError(f"{shown(path)} is not an IDX file: magic number {head.hex(' ')}",
                                "expected 00 00 then a type code (08 uint8, 09 int8, 0B int16, 0C int32, 0D float32, "
                                "0E float64) and the number of dimensions; is it still gzip-compressed without a "
                                ".gz name?")
            dtype, ndim = _IDX_TYPES[head[2]], head[3]
            if ndim == 0:
                raise DataError(f"{shown(path)}: the IDX header declares 0 dimensions", "the file is damaged")
            header = 4 + 4 * ndim
            sizes = f.read(4 * ndim)
            if len(sizes) < 4 * ndim:
                raise DataError(f"{shown(path)} is truncated: its {ndim} dimension sizes need {header} bytes",
                                "the file is damaged; copy it again")
            dims = tuple(int(d) for d in np.frombuffer(sizes, dtype=">u4"))
            nbytes = math.prod(dims) * dtype.itemsize
            if not gz and size != header + nbytes:
                what = "truncated" if size < header + nbytes else "longer than its header says"
                raise DataError(f"{shown(path)} is {what}: shape {dims} of {dtype.name} needs {header + nbytes:,} "
                                f"bytes, the file has {size:,}", "the file is damaged or incomplete; copy it again")
            check_memory(2 * nbytes, f"reading {shown(path)} (shape {dims} of {dtype.name})",
                         "use a smaller file, or a machine with more memory", DataError)
            body = f.read(nbytes + 1)  # never more than the header declares (a .gz can expand without end)
    except (OSError, EOFError, zlib.error) as exc:
        # gzip raises EOFError for a cut-off stream and BadGzipFile (an OSError) for a non-gzip file.
        raise DataError(f"cannot read {shown(path)}: {exc}",
                        "the file is damaged or not gzip-compressed; re-copy it or remove the .gz suffix") from None
    if len(body) != nbytes:
        what = "truncated" if len(body) < nbytes else "longer than its header says"
        raise DataError(f"{shown(path)} is {what}: shape {dims} of {dtype.name} needs {header + nbytes:,} bytes "
                        "uncompressed", "the file is damaged or incomplete; copy it again")
    data = np.frombuffer(body, dtype=dtype).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path, array) -> None:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64; ≥ 1 dimension) as an IDX file,
    gzip-compressed when the name ends in ``.gz``."""
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=").str if arr.dtype.itemsize > 1 else arr.dtype.str
    if key not in _IDX_CODES:
        raise DataError(f"IDX cannot store dtype {arr.dtype}",
                        "convert to uint8, int8, int16, int32, float32 or float64 first")
    if arr.ndim == 0 or arr.ndim > 255:
        raise DataError(f"IDX stores arrays of 1 to 255 dimensions, got {arr.ndim}", "reshape the array")
    code = _IDX_CODES[key]
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(arr, dtype=_IDX_TYPES[code]).tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        # mtime=0 makes the same array give the same bytes.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(header + body)
    else:
        path.write_bytes(header + body)


_IDX_PARTS = {
    "train_images": ("train-images", "idx3-ubyte"),
    "train_labels": ("train-labels", "idx1-ubyte"),
    "test_images": ("t10k-images", "idx3-ubyte"),
    "test_labels": ("t10k-labels", "idx1-ubyte"),
}


def _find_idx_files(directory: Path, hint: str) -> dict:
    if not directory.is_dir():
        raise DataError(f"no such directory: {directory}", hint)
    found, missing = {}, []
    for key, (stem, kind) in _IDX_PARTS.items():
        # The usual name is train-images-idx3-ubyte(.gz); some copies use train-images.idx3-ubyte.
        names = [f"{stem}{sep}{kind}{gz}" for sep in ("-", ".") for gz in (".gz", "")]
        path = next((directory / n for n in names if (directory / n).is_file()), None)
        if path is None:
            missing.append(f"{stem}-{kind}[.gz]")
        found[key] = path
    if missing:
        raise DataError(f"{directory} lacks the IDX file(s) {', '.join(missing)}",
                        hint or "an MNIST-style directory holds train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                                "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz)")
    return found


def _load_idx_split(directory, dtype, hint=""):
    files = _find_idx_files(Path(directory), hint)
    out = []
    image_shape = None
    for part in ("train", "test"):
        images, labels = read_idx(files[f"{part}_images"]), read_idx(files[f"{part}_labels"])
        if images.ndim != 3:
            raise DataError(f"{files[f'{part}_images']} holds an array of shape {images.shape}; expected (m, rows, cols)",
                            "the file is not an image file")
        if labels.ndim != 1:
            raise DataError(f"{files[f'{part}_labels']} holds an array of shape {labels.shape}; expected (m,)",
                            "the file is not a label file")
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{part}: {images.shape[0]} images but {labels.shape[0]} labels in {directory}",
                            "the image and label files do not belong together")
        if image_shape is not None and images.shape[1:] != image_shape:
            raise DataError(f"train images are {image_shape} but test images are {images.shape[1:]}", "mixed data sets?")
        image_shape = images.shape[1:]
        out += [_idx_images(images, dtype, files[f"{part}_images"]), _idx_labels(labels, files[f"{part}_labels"])]
    return tuple(out), image_shape


MAX_LABEL = 100_000  # a label above it asks for that many class names: a damaged or foreign label file


def _idx_images(images: np.ndarray, dtype, path) -> np.ndarray:
    """Images (m, rows, cols) as rows X (m, rows·cols). uint8 pixels become ``dtype``; any other type
    keeps its values (float images as float32 or float64, never cast to uint8), NaN and infinity refused."""
    X = images.reshape(images.shape[0], math.prod(images.shape[1:]))
    if X.dtype == np.uint8:
        return X.astype(dtype, copy=False)
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        r, c = (int(v) for v in np.argwhere(~np.isfinite(X))[0])
        raise DataError(f"{shown(path)}: image {r}, pixel {c} is {X[r, c]}", "pixels must be finite numbers")
    # float32 holds int8, int16 and float32 values exactly; int32 and float64 need float64.
    exact = np.float32 if (X.dtype.itemsize <= 2 or X.dtype == np.float32) else np.float64
    return X.astype(exact)


def _idx_labels(labels: np.ndarray, path) -> np.ndarray:
    """Labels as int64 class indices: whole numbers from 0 to MAX_LABEL, else a DataError naming the first
    bad one (never truncated: 0.5 is not class 0)."""
    y = labels
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (np.mod(np.where(np.isfinite(y), y, 0), 1) != 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{shown(path)}: label {i} is {y[i]}, not a whole number", "labels are class indices 0..K-1")
    if y.size and (y.min() < 0 or y.max() > MAX_LABEL):
        i = int(np.argmin(y) if y.min() < 0 else np.argmax(y))
        raise DataError(f"{shown(path)}: label {i} is {y[i]:g}; class indices run from 0 to at most {MAX_LABEL:,}",
                        "is it a label file? labels are class indices 0..K-1")
    return y.astype(np.int64)


def load_idx_dataset(directory, dtype="uint8"):
    """(X_train, y_train, X_test, y_test) from an MNIST-layout directory of IDX files.

    Images (m, rows, cols) are flattened to X (m, rows·cols), e.g. (60000, 784), with raw pixel values
    0..255 as ``dtype`` (uint8 by default; ``"float32"`` gives the same values as floats; scale them
    with ``Scaler("divide", 255)``). Labels are int64.
    """
    arrays, _ = _load_idx_split(directory, np.dtype(dtype))
    return arrays


def load_fashion_mnist(dir=None, dtype="uint8"):
    """Fashion-MNIST (X_train (60000, 784), y_train, X_test (10000, 784), y_test) from ``dir``,
    by default /usr/share/datasets/fashion-mnist/ (Debian/Ubuntu package ``dataset-fashion-mnist``)."""
    arrays, _ = _load_idx_split(dir or FASHION_MNIST_DIR, np.dtype(dtype), FASHION_MNIST_HINT)
    return arrays


# -- CSV ------------------------------------------------------------------------------------------
@dataclass
class CSVTable:
    """A CSV file read as numbers: X (m, n) float64, y (m,) (float64, or str labels), column names.

    ``notes`` says what the reader decided on its own (an index column left out, the delimiter it
    detected), for the caller to announce; ``delimiter`` is the one used, ``detected`` whether the
    reader chose it; ``left_out`` lists the columns that are neither features nor the target, each as
    ``{"column": name, "why": ...}`` (why: ``index`` for pandas' unnamed index column, ``drop``,
    ``target`` for a model's target column in a file of inputs, ``drop in training``)."""

    X: np.ndarray
    y: np.ndarray
    feature_names: list
    target_name: str
    has_header: bool
    notes: list = field(default_factory=list)
    delimiter: str = ","
    detected: bool = False
    left_out: list = field(default_factory=list)
    numbered: bool = False  # the header is pandas' 0, 1, ..., n−1 of a frame without column names

    def reading(self) -> dict:
        """How the file was read, for a run to record: the delimiter (by name), whether it was detected,
        whether the first row was a header, the columns left out and why."""
        return {"format": "csv", "delimiter": delimiter_name(self.delimiter),
                "delimiter_detected": self.detected, "header": self.has_header,
                "numbered_header": self.numbered, "left_out": list(self.left_out)}


DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")  # 5,1: a number as spreadsheets in many locales write it


def _missing_cells(rows, columns) -> dict:
    """{column: cells that are empty or NaN}, in column order, for the columns that have any."""
    gaps = {}
    for _, row in rows:
        for j in columns:
            if row[j] == "" or row[j].lower() == "nan":
                gaps[j] = gaps.get(j, 0) + 1
    return gaps


def _decimal_comma_hint(delimiter: str) -> str:
    return ("deltaprop reads numbers with a decimal point: save the file with decimal points (pandas: "
            f"pd.read_csv(path, sep={delimiter!r}, decimal=',').to_csv(new_path, index=False))")


def _ordinal(i: int) -> str:
    return f"{i}{'th' if 10 <= i % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(i % 10, 'th')}"


def delimiter_name(delimiter: str) -> str:
    return DELIMITERS.get(delimiter, repr(delimiter))


def detect_delimiter(lines: list[str]) -> str:
    """The delimiter among comma, semicolon and tab that splits the first lines into the same number
    of cells, the most cells; comma when none splits them."""
    best, best_cells = ",", 1
    for d in DELIMITERS:
        counts = {len(row) for row in csv.reader(lines, delimiter=d) if row}
        if len(counts) == 1:
            (cells,) = counts
            if cells > best_cells:
                best, best_cells = d, cells
    return best


def parse_delimiter(text: str) -> str:
    """A ``--delimiter`` value: ',', ';', 'tab' or '\\t' (or the words comma, semicolon)."""
    words = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", ",": ",", ";": ";", "\t": "\t"}
    if text not in words:
        raise DataError(f"unknown delimiter {text!r}", "use comma (,), semicolon (;) or tab")
    return words[text]


def _looks_like_index(name: str, values: list[str]) -> bool:
    """An unnamed first column holding 0, 1, ..., m−1: the row index pandas' ``to_csv`` writes."""
    if name not in ("", "Unnamed: 0", "index"):
        return False
    try:
        return all(float(v) == i for i, v in enumerate(values))
    except ValueError:
        return False


def _drop_list(drop) -> list:
    if drop is None:
        return []
    if isinstance(drop, str):
        return [d.strip() for d in drop.split(",") if d.strip()]
    if isinstance(drop, (int, np.integer)):
        return [int(drop)]
    return list(drop)


def read_csv(path, target=None, delimiter: str | None = None, labelled: bool = True, drop=None,
             index: bool | None = None, drop_if_present=(), dropped_in_training=None, known=None) -> CSVTable:
    """Read a CSV file of numbers with one label column.

    The delimiter (comma, semicolon or tab) is detected from the first lines unless given. The first
    row is a header when all of its cells are non-numeric, or when it has a non-numeric cell above a
    numeric one. ``target`` is the label column: a header name, a 0-based index (negative counts from
    the end), or None for the last column. ``drop`` names (or numbers) columns to leave out (a list,
    or one string "a,b"). A first column without a name that holds 0, 1, ..., m−1 (pandas' default
    ``to_csv`` index) is left out too, and said in ``notes`` (``index=False`` keeps it, ``True``
    drops the first column whatever it holds). Labels may be text; every other cell must be a finite
    number. With ``labelled=False`` every column is a feature (inputs to predict), ``y`` is empty and
    ``target_name`` is "". Columns named in ``drop_if_present`` are left out when the header has them
    (a model's target column in a file of inputs), said in ``notes``; so are the columns of
    ``dropped_in_training`` (a model's ``drop``: names, a list or "a,b") that the header has. ``known``
    (a model's ``feature_names``): a column of text outside it is named as a column the model does not know.
    """
    path = _existing_file(path, "pass the path of a CSV file")
    notes = []
    detected = delimiter is None
    try:
        raw = open_regular(path, "CSV file", DataError)
        # Python's rows of strings take about ten times the file's size.
        check_memory(10 * os.fstat(raw.fileno()).st_size, f"reading {shown(path)}",
                     "split the file, or use a machine with more memory", DataError)
        with io.TextIOWrapper(raw, newline="", encoding="utf-8-sig") as f:
            if delimiter is None:
                head = [line for _, line in zip(range(20), f)]
                delimiter = detect_delimiter(head)
                if delimiter != ",":
                    notes.append(f"{shown(path)}: the cells are separated by a {delimiter_name(delimiter)}; "
                                 "--delimiter sets another")
                f.seek(0)
            rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(f, delimiter=delimiter), 1)
                    if row and any(c.strip() for c in row)]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})",
                        "is it a CSV file? save it as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path} cannot be parsed as CSV: {exc}", "check the quoting") from None
    if not rows:
        raise DataError(f"{path} is empty", "a CSV file needs at least one row of numbers")
    first = rows[0][1]
    second = rows[1][1] if len(rows) > 1 else None
    has_header = all(not _is_number(c) for c in first if c) or (
        second is not None and any(not _is_number(a) and _is_number(b) for a, b in zip(first, second)))
    # The column names pandas gives a frame without names are 0, 1, ..., n−1 (after an unnamed index column
    # when the index is written too).
    named = first[1:] if first and first[0] == "" else first
    numbered = bool(named) and named == [str(j) for j in range(len(named))]
    if numbered and not has_header and len(first) >= 3 and second is not None:  # (0,1 may well be data)
        # pd.DataFrame(array).to_csv(path, index=False): the column names pandas gives a frame without
        # names, 0, 1, ..., n−1. Read as data, they would be one more row (and, below a class column,
        # one more class).
        has_header = True
        notes.append(f"{shown(path)}: the first row is 0, 1, ..., {len(first) - 1}: taken as the header "
                     "pandas writes for a frame without column names, not as a row of data")
    numbered = numbered and has_header
    if has_header:
        names = first
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise DataError(f"{path}: the header repeats the column name(s) {', '.join(map(repr, dup))}",
                            "give every column its own name")
        rows = rows[1:]
    else:
        names = [str(i) for i in range(len(first))]
    if not rows:
        raise DataError(f"{path} has a header but no rows of data", "add data rows")
    n_cols = len(names)
    for line, row in rows:
        if len(row) != n_cols:
            hint = "every row needs the same number of cells"
            if n_cols == 1:
                hint += f"; is the delimiter {delimiter_name(delimiter)} right? (--delimiter sets it)"
            first = "header" if has_header else "first row"
            raise DataError(f"{path}, line {line}: {len(row)} cells, but the {first} "
                            f"has {n_cols}", hint)
    skip = set()
    why = {}  # column → why it is left out (for CSVTable.left_out)
    if n_cols > 1 and index is not False and has_header and (
            index or _looks_like_index(names[0], [row[0] for _, row in rows])):
        skip.add(0)
        why[0] = "index"
        notes.append(f"{path}: the first column has no name and holds the row numbers 0..{len(rows) - 1} "
                     "(the index pandas' to_csv writes): left out, not a feature")
    for d in _drop_list(drop):
        j = _column_index(d, names, has_header, path, what="--drop")
        skip.add(j)
        why.setdefault(j, "drop")
    for name in drop_if_present if has_header else ():
        if name and name in names:
            skip.add(names.index(name))
            why.setdefault(names.index(name), "target")
            notes.append(f"{path}: the column {name!r} is the model's target: left out of the inputs")
    if labelled and n_cols - len(skip) < 2:
        raise DataError(f"{path} has {n_cols - len(skip)} column(s) to use; expected feature columns and a "
                        "label column",
                        f"is the delimiter {delimiter_name(delimiter)} right? (--delimiter sets it)")
    t = None
    if labelled:
        t = _target_index(target, names, has_header, path) if target is not None else max(
            j for j in range(n_cols) if j not in skip)
        if t in skip:
            if why.get(t) == "index":
                raise DataError(f"{shown(path)}: the target column {t} is the unnamed first column, which "
                                "holds the row numbers pandas' to_csv writes (left out as the index)",
                                f"name the label column (--target NAME; Python: target=); its columns are "
                                f"{', '.join(f'{j}: {n!r}' for j, n in enumerate(names) if j != t)}")
            raise DataError(f"{shown(path)}: the target column {names[t]!r} is also left out (--drop)",
                            "take it out of --drop (Python: drop=), or choose another target")
    if has_header and dropped_in_training:
        left = [j for j in dict.fromkeys(names.index(str(d)) for d in _drop_list(dropped_in_training)
                                         if str(d) in names) if j != t and j not in skip]
        if left:
            skip.update(left)
            why.update((j, "drop in training") for j in left)
            notes.append(f"{path}: the column(s) {', '.join(repr(names[j]) for j in left)} were left out in "
                         "training (--drop): left out here too")
    feature_cols = [j for j in range(n_cols) if j != t and j not in skip]
    left_out = [{"column": names[j] if has_header else str(j), "why": why.get(j, "drop")}
                for j in sorted(skip)]
    X = np.empty((len(rows), len(feature_cols)), dtype=np.float64)
    labels = []
    for i, (line, row) in enumerate(rows):
        for k, j in enumerate(feature_cols):
            try:
                v = float(row[j])
            except ValueError:
                v = None
            if v is None or not math.isfinite(v):
                if v is None and known and has_header and not numbered and names[j] not in known:
                    raise DataError(f"{shown(path)} has the column {short(names[j])} the model does not know "
                                    f"(row {i + 1} holds {short(row[j])})",
                                    "pass the model's columns (their order does not matter); leave the others "
                                    f"out with --drop {safe_text(shlex.quote(names[j]))}")
                col = f"column {short(names[j])}" if has_header else f"column {j}"
                problem = "is empty" if row[j] == "" else ("is not a number" if v is None else "is not finite")
                hint = ("feature cells must be finite numbers; fill or drop missing values, encode text "
                        "columns as numbers, or leave the column out (the command: --drop NAME or "
                        "--target NAME; Python: drop= or target=)")
                if v is None and _DECIMAL_COMMA.fullmatch(row[j]):
                    problem += " (a decimal comma?)"
                    hint = _decimal_comma_hint(delimiter)
                elif row[j] == "" or row[j].lower() == "nan":  # missing values (pandas writes NaN as "")
                    gaps = _missing_cells(rows, feature_cols)
                    where = [f"{short(names[c]) if has_header else f'column {c}'} in {n} "
                             f"row{'s' * (n != 1)}" for c, n in gaps.items()]
                    more = ", ..." if len(where) > 5 else ""
                    problem += f"; missing in all: {', '.join(where[:5])}{more}"
                    hint = ("fill or drop the missing values first (pandas: df.dropna() or df.fillna(...)), "
                            "or leave such a column out (the command: --drop NAME; Python: drop=)")
                raise DataError(f"{shown(path)}, row {i + 1} (line {line}), {col} ({_ordinal(j + 1)}): "
                                f"{short(row[j])} {problem}", hint)
            X[i, k] = v
        if labelled:
            if row[t] == "":
                raise DataError(f"{shown(path)}, row {i + 1} (line {line}): the label is empty",
                                "drop rows with missing labels")
            labels.append(row[t])
    if labelled and has_header and len(rows) >= 10:
        # A named column of row numbers (df.index.name = "id"; df.to_csv(path)) is a feature like any other,
        # and on rows saved in order of their class it gives the label away: said, never silent.
        steps = np.arange(len(rows), dtype=np.float64)
        for k, j in enumerate(feature_cols):
            if np.array_equal(X[:, k], steps) or np.array_equal(X[:, k], steps + 1):
                notes.append(f"{shown(path)}: the column {names[j]!r} holds the row numbers {int(X[0, k])}.."
                             f"{int(X[-1, k])}: taken as a feature; if it is an ID, leave it out with --drop "
                             f"{safe_text(shlex.quote(names[j]))} (rows saved in order of their class would let it give the "
                             "label away)")
    features = [names[j] for j in feature_cols]
    if not labelled:
        return CSVTable(X, np.empty(0), features, "", has_header, notes, delimiter, detected, left_out,
                        numbered)
    if all(_is_number(v) for v in labels):
        y = np.array([float(v) for v in labels], dtype=np.float64)
        if not np.isfinite(y).all():
            i = int(np.flatnonzero(~np.isfinite(y))[0])
            raise DataError(f"{path}, row {i + 1} (line {rows[i][0]}): the label {labels[i]!r} is not finite",
                            "drop rows with missing labels")
    else:
        if all(_is_number(v) or _DECIMAL_COMMA.fullmatch(v) for v in labels):
            i = next(i for i, v in enumerate(labels) if not _is_number(v))
            raise DataError(f"{shown(path)}, row {i + 1} (line {rows[i][0]}): the label {short(labels[i])} "
                            "is a number with a decimal comma: read as text, every value would be a class of "
                            "its own",
                            _decimal_comma_hint(delimiter))
        y = np.array(labels, dtype=str)
    return CSVTable(X, y, features, names[t], has_header, notes, delimiter, detected, left_out, numbered)


def _column_index(key, names, has_header, path, what: str) -> int:
    n = len(names)
    listing = ", ".join(f"{j}: {name!r}" for j, name in enumerate(names)) if has_header else f"0..{n - 1}"
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and -n <= key < n:
        return int(key) % n
    name = str(key)
    if name in names:
        return names.index(name)
    if name.lstrip("-").isdigit() and -n <= int(name) < n:
        return int(name) % n
    raise DataError(f"{what}: {path} has no column {name!r}", f"columns are {listing}")


def match_columns(table: CSVTable, feature_names, target_name=None, path="the file"):
    """X with its columns in the order of ``feature_names`` (the model's), matched by header name;
    ``(X, notes)``. The model's own target column is left out when present; a missing or an
    unexpected column is a DataError that names it. A file without a header is taken in its order, and
    said in the notes when the model's columns have names (nothing checks that order); so is a file with
    a header given to a model that stores no column names (imported from PyTorch or ONNX, or trained on
    arrays)."""
    if not feature_names:
        named = table.has_header and not table.numbered
        return table.X, [unnamed_model_note(path, table.feature_names)] if named else []
    wanted = [str(n) for n in feature_names]
    numbers = wanted == [str(j) for j in range(len(wanted))]  # the model's own file had no names either
    if not table.has_header:
        return table.X, [] if numbers else [headerless_note(path, wanted)]
    if table.numbered and not numbers:
        return table.X, [headerless_note(path, wanted, numbered=True)]
    order, notes = column_order(table.feature_names, feature_names, target_name, path)
    return table.X[:, order], notes


def unnamed_model_note(path, names) -> str:
    """What a file with a header is taken as, for a model that stores no column names: its own order."""
    listing = ", ".join(map(repr, [str(n) for n in names][:6])) + (", ..." if len(names) > 6 else "")
    return (f"{shown(path)}: the model stores no column names, so nothing matches them: the columns are taken "
            f"in the file's order ({listing}), which must be the order the model was trained on")


def headerless_note(path, feature_names, numbered: bool = False) -> str:
    """What a file without a header row (or with pandas' numbers 0, 1, ... for one) is taken as, for a
    model whose columns have names."""
    wanted = [str(n) for n in feature_names]
    listing = ", ".join(map(repr, wanted[:6])) + (", ..." if len(wanted) > 6 else "")
    what = "no column names (its header is pandas' 0, 1, ...)" if numbered else "no header row"
    return (f"{shown(path)} has {what}: its columns are taken in the order of the model's "
            f"({listing}); give the file a header row of those names to have them matched by name")


def column_order(names, feature_names, target_name=None, path="the file"):
    """(indices into ``names`` that give the columns ``feature_names`` in order, notes): see
    :func:`match_columns`."""
    names = [str(n) for n in names]
    wanted = [str(n) for n in feature_names]
    notes = []
    keep = [j for j, n in enumerate(names) if not (target_name and n == target_name and n not in wanted)]
    if len(keep) < len(names):
        notes.append(f"{path}: the column {target_name!r} is the model's target: left out of the inputs")
    present = [names[j] for j in keep]
    missing = [n for n in wanted if n not in present]
    unexpected = [n for n in present if n not in wanted]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"lacks the column(s) {', '.join(map(repr, missing))} the model was trained on")
        if unexpected:
            parts.append(f"has column(s) {', '.join(map(repr, unexpected))} the model does not know")
        raise DataError(f"{path} " + " and ".join(parts),
                        "pass the training columns (their order does not matter)"
                        + ("; leave the others out with --drop NAME" if unexpected else ""))
    order = [keep[present.index(n)] for n in wanted]
    if order != keep:
        notes.append(f"{path}: columns matched to the model's by name (the file has them in another order)")
    return order, notes


def _target_index(target, names, has_header, path) -> int:
    n = len(names)
    listing = ", ".join(f"{j}: {name!r}" for j, name in enumerate(names)) if has_header else f"0..{n - 1}"
    if target is None:
        return n - 1
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        if -n <= target < n:
            return int(target) % n
        raise DataError(f"{path} has no column {target} (it has {n} columns)", f"columns are {listing}")
    name = str(target)
    if name in names:
        return names.index(name)
    if name.lstrip("-").isdigit() and -n <= int(name) < n:
        return int(name) % n
    raise DataError(f"{path} has no column {name!r}", f"columns are {listing}")


def load_csv(path, target=None, delimiter: str | None = None):
    """(X (m, n) float64, y (m,)) from a CSV file; see :func:`read_csv` for the rules."""
    table = read_csv(path, target, delimiter)
    return table.X, table.y


# -- NPZ ------------------------------------------------------------------------------------------
_NPZ_KEYS = ("X", "y", "X_test", "y_test", "class_names")


def _npy_header(f, where: str, hint: str):
    """(shape, dtype, header length) of the .npy stream ``f``, read without reading the data."""
    from numpy.lib import format as npy

    start = f.tell() if f.seekable() else 0
    try:
        version = npy.read_magic(f)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, _, dtype = reader(f, max_header_size=100_000)
    except (ValueError, EOFError, OSError) as exc:
        raise DataError(f"{where} is not a readable .npy array ({short(str(exc), 200)})", hint) from None
    return shape, dtype, (f.tell() - start) if f.seekable() else None


def _np_load(path, hint: str, archive: bool, required=()):
    """What a NumPy file holds, read with ``allow_pickle=False``: a single array (``archive`` False,
    an .npy file) or the arrays named in _NPZ_KEYS (``archive`` True, an .npz file with the
    ``required`` keys). Every problem is a DataError: a missing file, the other kind of NumPy file,
    missing keys, an object array (which would need unpickling), an array whose declared size does not
    match the file or the memory left, or a damaged file."""
    import zipfile

    path = _existing_file(path, hint)
    kind = ".npz" if archive else ".npy"
    with open_regular(path, f"{kind} file", DataError, hint) as f:
        size = os.fstat(f.fileno()).st_size
        start = f.read(8)
        f.seek(0)
        if start.startswith(b"PK") and not archive:
            raise DataError(f"{shown(path)} is an .npz archive, not a single array",
                            "name it .npz, or save one array with numpy.save(path, X)")
        if start.startswith(b"\x93NUMPY") and archive:
            raise DataError(f"{shown(path)} holds a single array, not an .npz archive", hint)
        if not start.startswith(b"PK" if archive else b"\x93NUMPY"):
            raise DataError(f"{shown(path)} is not a NumPy {kind} file (it starts with {short(start)})", hint)
        try:
            if not archive:
                shape, dtype, head = _npy_header(f, shown(path), hint)
                _refuse_objects(path, dtype)
                nbytes = math.prod(shape) * dtype.itemsize
                if size - head != nbytes:
                    raise DataError(f"{shown(path)} declares an array of shape {shape} of {dtype} ({nbytes:,} bytes) "
                                    f"but holds {size - head:,} bytes of data", "the file is damaged; save it again")
                check_memory(nbytes, f"reading {shown(path)} (shape {shape} of {dtype})",
                             "use a smaller file, or a machine with more memory", DataError)
                f.seek(0)
                return np.load(f, allow_pickle=False)
            with zipfile.ZipFile(f) as z:
                names = {n[:-4]: n for n in z.namelist() if n.endswith(".npy")}
                missing = [k for k in required if k not in names]
                if missing:
                    raise DataError(f"{shown(path)} has no array(s) {', '.join(missing)}; it holds "
                                    f"{_listing(names) if names else 'nothing'}", hint)
                total = 0
                for key in (k for k in _NPZ_KEYS if k in names):
                    info = z.getinfo(names[key])
                    with z.open(info) as member:
                        shape, dtype, _ = _npy_header(member, f"{shown(path)}: array {key}", hint)
                    _refuse_objects(path, dtype, key)
                    nbytes = math.prod(shape) * dtype.itemsize
                    if nbytes > info.file_size:
                        raise DataError(f"{shown(path)}: array {key} declares shape {shape} of {dtype} ({nbytes:,} "
                                        f"bytes) but its member holds {info.file_size:,}", "the file is damaged")
                    total += nbytes
                check_memory(total, f"reading {shown(path)} ({total:,} bytes of arrays once decompressed)",
                             "use a smaller file, or a machine with more memory", DataError)
                return {key: _read_member(z, names[key]) for key in _NPZ_KEYS if key in names}
        except DataError:
            raise
        except MemoryError:
            raise
        except Exception as exc:  # BadZipFile, OSError, EOFError, ValueError: damaged or foreign
            raise DataError(f"{shown(path)} is not a readable {kind} file ({type(exc).__name__}: "
                            f"{short(str(exc), 200)})", hint) from None


def _listing(names) -> str:
    text = safe_text(", ".join(names))
    return text if len(text) <= 200 else text[:197] + "..."


def _read_member(z, name):
    with z.open(name) as member:
        return np.lib.format.read_array(member, allow_pickle=False)


def _refuse_objects(path, dtype, key=None):
    if dtype.hasobject:
        where = f"array {key} of " if key else ""
        raise DataError(f"{where}{shown(path)} holds Python objects ({dtype}), which cannot be read without "
                        "unpickling", "save plain numeric (or string) arrays; deltaprop never unpickles data")


def load_npz(path) -> dict:
    """The arrays of a NumPy ``.npz`` file with keys ``X`` and ``y`` (optionally ``X_test``, ``y_test``,
    ``class_names``), read with ``allow_pickle=False``: an object array is refused, never unpickled."""
    path = Path(path)
    arrays = _np_load(path, "save it with numpy.savez(path, X=X, y=y)", archive=True, required=("X", "y"))
    for key in ("X", "X_test"):
        if key in arrays:
            X = arrays[key]
            if X.ndim == 0 or X.shape[0] == 0:
                raise DataError(f"{shown(path)}: {key} has shape {X.shape}, no rows of examples",
                                "store X as (m examples, n features) with m ≥ 1")
            if X.ndim == 1:
                raise DataError(f"{path}: {key} is 1-d with shape {X.shape}", "store X as (m examples, n features)")
            if X.dtype.kind not in "biuf":
                raise DataError(f"{path}: {key} has dtype {X.dtype}, not numbers", "store numeric features")
            if X.ndim > 2:
                arrays[key] = X.reshape(X.shape[0], -1)
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path} has only one of X_test and y_test", "store both, or neither")
    for xk, yk in (("X", "y"), ("X_test", "y_test")):
        if xk in arrays:
            if arrays[yk].ndim != 1 or arrays[yk].shape[0] != arrays[xk].shape[0]:
                raise DataError(f"{path}: {yk} has shape {arrays[yk].shape} for {arrays[xk].shape[0]} rows of {xk}",
                                f"store one label per row, shape ({arrays[xk].shape[0]},)")
    return arrays


# -- .npy files, read by blocks ------------------------------------------------------------------
NPY_DIR_FILES = ("X.npy", "y.npy", "X_test.npy", "y_test.npy")


def _npy_targets(path, m: int, what: str) -> np.ndarray:
    """The 1-d targets of an .npy file, one per row of the m rows of ``what`` (held in memory)."""
    path = Path(path)
    y = _np_load(path, "save the targets with numpy.save(path, y), one per row of X", archive=False)
    if y.ndim != 1 or y.shape[0] != m:
        raise DataError(f"{path} holds targets of shape {y.shape} for the {m} rows of {what}",
                        f"save one target per row, shape ({m},)")
    return y


def load_npy_dataset(X_path, y_path, X_test_path=None, y_test_path=None, *, test_fraction: float = 0.3,
                     seed: int = 0, task=None, in_memory: bool = False, name: str | None = None) -> Dataset:
    """A Dataset whose rows stay on disk: X_train and X_test are :class:`deltaprop.io.blocks.NpyRows`
    (read by blocks, never whole), the targets are in memory. Without test files, the rows are split
    as :func:`split` splits them (the same row numbers as for the same arrays in memory).
    ``in_memory`` loads the rows instead (plain arrays, the same split)."""
    from deltaprop.io.blocks import NpyRows

    if (X_test_path is None) != (y_test_path is None):
        raise DataError("test rows need both X_test.npy and y_test.npy", "provide both, or neither")
    rows = NpyRows(X_path)
    if len(rows._header[0]) < 2:
        raise DataError(f"{X_path} is 1-d with shape {rows._header[0]}; expected (m examples, n features)",
                        "save X as a 2-d array; for one feature, X.reshape(-1, 1)")
    y = _npy_targets(y_path, rows.shape[0], Path(X_path).name)
    if X_test_path is not None:
        test = NpyRows(X_test_path)
        if test.n_features != rows.n_features:
            raise DataError(f"{X_test_path} has {test.n_features} features per row but {X_path} has {rows.n_features}",
                            "the test rows need the training rows' columns")
        y_test = _npy_targets(y_test_path, test.shape[0], Path(X_test_path).name)
        y_all, names = encode_labels(np.concatenate([y, y_test]), task)
        parts = [rows, y_all[:y.shape[0]], test, y_all[y.shape[0]:]]
    else:
        y, names = encode_labels(y, task)
        train, y_train, test, y_test = split(np.arange(rows.shape[0]), y, test_fraction, seed,
                                             stratify=names is not None)
        parts = [rows.subset(train), y_train, rows.subset(test), y_test]
    if in_memory:
        parts[0], parts[2] = parts[0].to_array(), parts[2].to_array()
    return Dataset(name or Path(X_path).stem, *parts, class_names=names)


def npy_dir_files(directory) -> list | None:
    """[X, y, X_test or None, y_test or None] paths of a directory holding X.npy and y.npy, else None."""
    d = Path(directory)
    if not (d.is_dir() and (d / "X.npy").is_file()):
        return None
    if not (d / "y.npy").is_file():
        raise DataError(f"{d} holds X.npy but no y.npy", "save the targets beside it: numpy.save(DIR/'y.npy', y)")
    found = [d / f for f in NPY_DIR_FILES]
    return [p if p.is_file() else None for p in found]


# -- inputs to predict on -----------------------------------------------------------------------
def load_inputs(path, drop=None, feature_names=None, target_name=None, delimiter=None,
                notes=None, dropped_in_training=None) -> np.ndarray:
    """X (m, n) to predict on, from a file: ``.csv`` (every column a feature, a header is detected;
    ``drop`` names or numbers columns to leave out; with the model's ``feature_names`` the columns are
    matched by name and its ``target_name`` column left out, and so are the columns the model left out
    in training, ``dropped_in_training``: see :func:`match_columns`), ``.npy``
    (2-d; images (m, rows, cols) are flattened), ``.npz`` (its array ``X``) or anything else as an IDX
    file (``.gz`` or raw). What the reader decided on its own is appended to the list ``notes``."""
    path = Path(path)
    low = path.name.lower()
    if low.endswith(TABLE_SUFFIXES):
        keep = [str(n) for n in feature_names or ()]
        table = read_csv(path, labelled=False, drop=drop, delimiter=delimiter,
                         drop_if_present=[target_name] if target_name and target_name not in keep else [],
                         dropped_in_training=[d for d in _drop_list(dropped_in_training) if str(d) not in keep],
                         known=keep or None)
        X, matched = match_columns(table, feature_names, None, path)
        if notes is not None:
            notes.extend(table.notes + matched)
        return X
    if low.endswith(".npz"):
        return load_npz_inputs(path)
    if low.endswith(".npy"):
        X = _np_load(path, "pass the path of a .npy file saved with numpy.save(path, X)", archive=False)
    else:
        X = read_idx(path)
    return _as_rows(X, path)


def load_npz_inputs(path) -> np.ndarray:
    """The array ``X`` of an .npz file as rows (a ``y`` is not needed)."""
    path = Path(path)
    X = _np_load(path, "save it with numpy.savez(path, X=X)", archive=True, required=("X",))["X"]
    return _as_rows(X, path)


def _as_rows(X: np.ndarray, path: Path) -> np.ndarray:
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path} holds {X.dtype} values, not numbers", "store numeric features")
    if X.ndim < 2:
        raise DataError(f"{shown(path)} holds an array of shape {X.shape}; expected (m examples, n features)",
                        "for one example, store it as shape (1, n)")
    if X.shape[0] == 0 or math.prod(X.shape[1:]) == 0:
        raise DataError(f"{shown(path)} holds an array of shape {X.shape}: no examples or no features",
                        "pass at least one row of at least one number")
    return X.reshape(X.shape[0], math.prod(X.shape[1:]))


# -- labels and splits ----------------------------------------------------------------------------
def encode_labels(y, task=None, class_names=None, name=None):
    """(y as class indices or values, class_names or None), by the rule of :mod:`deltaprop.targets`:
    text is classes, non-whole numbers are regression, whole numbers are classes when at most 20
    distinct values (or at most 5 % of the rows) occur, and otherwise ``task`` must say which
    (:class:`deltaprop.targets.TaskUnclearError`). Classes are numbered in sorted order of their labels."""
    return encode_targets(y, task, class_names, name=name)


def split(X, y, test_fraction: float = 0.3, seed: int = 0, stratify: bool = True):
    """(X_train, y_train, X_test, y_test): about ``test_fraction`` of each class's rows (of all rows when
    not ``stratify``) go to the test side, drawn with ``numpy.random.default_rng(seed)``."""
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must be between 0 and 1, got {test_fraction!r}", "for example 0.3")
    try:
        return train_test_split(X, y, test_fraction, np.random.default_rng(seed), stratify=stratify)
    except InputError as exc:
        raise DataError(exc.message, exc.hint) from None


def _sha256_of(files, *, named: bool) -> tuple[int, str]:
    """(bytes read, SHA-256 in hex) of the regular ``files`` in turn; with ``named``, each file's name
    and a NUL byte go in before its bytes. The one reader of both data records (see
    docs/architecture.md, "Two records of a data file"): their hashes are stored in model files, run
    directories and checkpoints, so neither rule may change."""
    h, total = hashlib.sha256(), 0
    for f in files:
        if named:
            h.update(f.name.encode("utf-8", "surrogateescape") + b"\0")
        with open_regular(f, "data file", DataError) as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
                total += len(block)
    return total, h.hexdigest()


def file_fingerprint(path: str | os.PathLike[str]) -> dict:
    """{"path": absolute path, "size": bytes, "sha256": hash of the bytes alone}: the ``source`` a model,
    a run and a checkpoint record of a data file (CSV, NPZ), so that a later evaluation or resume can
    tell whether the file at that path is still the same, and recognise it when it moved (the name is
    not hashed). Compare with :func:`fingerprint`, which hashes the spec's data, names included."""
    path = Path(path).expanduser().resolve()
    _, digest = _sha256_of([path], named=False)
    return {"path": str(path), "size": path.stat().st_size, "sha256": digest}


def changed_file(source: dict) -> str | None:
    """None when the file recorded by :func:`file_fingerprint` is unchanged, else what changed."""
    path = Path(source["path"])
    if not path.is_file():
        return f"{path} is gone"
    size = path.stat().st_size
    if size != source.get("size"):
        return f"{path} has changed since training ({source.get('size')} bytes then, {size} now)"
    if file_fingerprint(path)["sha256"] != source.get("sha256"):
        return f"{path} has changed since training (same size, other contents)"
    return None


# -- --data specs -------------------------------------------------------------------------------
_DIR_PREFIXES = ("fashion-mnist", "fashion_mnist", "mnist", "idx")


def _spec_location(spec) -> tuple[str, str] | None:
    """(prefix with its colon or "", path) of a spec that names a file or directory; None for the
    data sets deltaprop knows by name (digits, the installed Fashion-MNIST)."""
    s = (os.fspath(spec) if isinstance(spec, os.PathLike) else str(spec)).strip()
    low = s.lower()
    if low in ("digits", "fashion-mnist", "fashion_mnist"):
        return None
    for prefix in _DIR_PREFIXES:
        if low.startswith(prefix + ":"):
            return s[:len(prefix) + 1], s[len(prefix) + 1:]
    return "", s


def names_a_path(spec) -> bool:
    """True for a spec that names a file or directory (not digits or the installed Fashion-MNIST):
    data whose fingerprint a model or a run must record before deltaprop reads it on their word."""
    return _spec_location(spec) is not None


def absolute_spec(spec) -> str:
    """The spec with its file or directory as an absolute path (``~`` expanded), so that it names the
    same data from any working directory: ``t.csv`` -> ``/home/me/t.csv``, ``mnist:d`` -> ``mnist:/home/me/d``."""
    where = _spec_location(spec)
    if where is None:
        return str(spec).strip()
    prefix, path = where
    return prefix + os.path.abspath(os.path.expanduser(path))


def fingerprint(spec: str | os.PathLike[str]) -> dict | None:
    """{"bytes", "sha256"} of the data a spec names (a file, or the regular files directly inside a
    directory, in name order, each file's name hashed before its bytes); None for digits and the
    installed Fashion-MNIST. Reads regular files only. What a run (``data_fingerprint``) and a model
    (``meta["data"]["fingerprint"]``) record before deltaprop reads a stored spec on their word."""
    where = _spec_location(spec)
    if where is None:
        return None
    path = Path(os.path.expanduser(where[1]))
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    else:
        files = [check_regular(path, "file", DataError, "check the --data path")]
    total, digest = _sha256_of(files, named=True)
    return {"bytes": total, "sha256": digest}


def _max_classes(names, limit):
    if limit is not None and names is not None and len(names) > limit:
        raise DataError(f"the labels make {len(names):,} classes; at most {limit:,} are taken",
                        "is the label column an ID or a number? choose it with --target, or pass --task regression")


def resolve(spec, *, test_fraction: float = 0.3, seed: int = 0, target=None, task=None,
            in_memory: bool = False, drop=None, delimiter=None, max_classes: int | None = None,
            dropped_in_training=None, known=None) -> Dataset:
    """The Dataset a ``--data`` spec names.

    ``digits``; ``fashion-mnist`` (installed package) or ``fashion-mnist:DIR``; ``mnist:DIR`` or
    ``idx:DIR`` (MNIST-layout IDX files); ``PATH.csv`` (``target`` picks the label column, ``drop``
    leaves columns out, ``delimiter`` is detected unless given: see :func:`read_csv`); ``PATH.npz``
    (keys X, y; optional X_test, y_test, class_names); a CSV's ``dropped_in_training`` and ``known`` (a
    model's ``drop`` and ``feature_names``) are :func:`read_csv`'s. Data without a test split is split
    ``1 − test_fraction`` / ``test_fraction`` per class with ``seed``; a ``test_fraction`` of 0 puts a
    CSV's or NPZ's rows all on the training side (evaluating a whole file). CSV and NPZ data sets carry
    ``source``: :func:`file_fingerprint`.

    ``PATH.npy`` with ``target`` the path of a .npy of targets, or a directory holding ``X.npy`` and
    ``y.npy`` (optionally ``X_test.npy`` and ``y_test.npy``): rows stay on disk and are read by blocks
    (:func:`load_npy_dataset`), unless ``in_memory``.
    """
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else str(spec)
    s = text.strip()
    low = s.lower()
    if low == "digits":
        X, y = load_digits()
        return Dataset("digits", *split(X, y, test_fraction, seed), image_shape=(8, 8),
                       class_names=[str(i) for i in range(10)], scaling="divide:16")
    for prefix in ("fashion-mnist", "fashion_mnist", "mnist", "idx"):
        if low == prefix or low.startswith(prefix + ":"):
            directory = os.path.expanduser(s[len(prefix) + 1:]) if low != prefix else ""
            if prefix.startswith("fashion"):
                (X_tr, y_tr, X_te, y_te), shape = _load_idx_split(directory or FASHION_MNIST_DIR, np.uint8,
                                                                   FASHION_MNIST_HINT)
                return Dataset("fashion-mnist", X_tr, y_tr, X_te, y_te, image_shape=tuple(shape),
                               class_names=list(FASHION_MNIST_CLASSES), scaling="divide:255")
            if not directory:
                raise DataError(f"{prefix} needs a directory: {prefix}:DIR",
                                "pass the directory holding train-images-idx3-ubyte.gz and the other three files")
            (X_tr, y_tr, X_te, y_te), shape = _load_idx_split(directory, np.uint8)
            if X_tr.shape[0] == 0 or X_te.shape[0] == 0:
                raise DataError(f"{shown(directory)}: the {'training' if X_tr.shape[0] == 0 else 'test'} IDX files "
                                "hold no images", "pass a directory with images in both splits")
            names = [str(i) for i in range(int(max(y_tr.max(), y_te.max())) + 1)]
            _max_classes(names, max_classes)
            # Pixels 0..255 are divided by 255; images stored as other numbers keep their own scale.
            scaling = "divide:255" if X_tr.dtype == np.uint8 else "standard"
            return Dataset(prefix if prefix == "mnist" else Path(directory).name or "idx", X_tr, y_tr, X_te, y_te,
                           image_shape=tuple(shape), class_names=names, scaling=scaling)
    if low.endswith((*TABLE_SUFFIXES, ".npz", ".npy")) or s.startswith("~"):
        s = os.path.expanduser(s)  # --data=~/t.csv reaches here unexpanded by the shell
    if low.endswith(".npy"):
        if target is None or not str(target).lower().endswith(".npy"):
            raise DataError(f"{s} holds the inputs only; the targets come from another .npy file",
                            "pass --target y.npy (or put X.npy and y.npy in a directory and pass --data DIR)")
        return load_npy_dataset(s, os.path.expanduser(str(target)), test_fraction=test_fraction, seed=seed,
                                task=task, in_memory=in_memory)
    found = npy_dir_files(s)
    if found is not None:
        return load_npy_dataset(*found, test_fraction=test_fraction, seed=seed, task=task, in_memory=in_memory,
                                name=Path(s).resolve().name)
    if low.endswith(TABLE_SUFFIXES):
        table = read_csv(s, target, delimiter=delimiter, drop=drop, dropped_in_training=dropped_in_training,
                         known=known)
        y, names = encode_labels(table.y, task, name=table.target_name if table.has_header else None)
        _max_classes(names, max_classes)
        parts = (table.X, y, table.X[:0], y[:0]) if test_fraction == 0 else split(
            table.X, y, test_fraction, seed, stratify=names is not None)
        notes = list(table.notes)
        if task is None and table.y.dtype.kind == "f":  # numbers: say which way the rule read them
            what = f"the target {table.target_name!r}" if table.has_header else "the last column"
            notes.append(f"{what} holds numbers with fractions: taken as regression values" if names is None else
                         f"{what} holds {len(names)} distinct whole numbers: taken as {len(names)} classes "
                         "(--task regression predicts the numbers instead)")
        return Dataset(Path(s).stem, *parts, class_names=names, feature_names=table.feature_names,
                       target_name=table.target_name if table.has_header else None, notes=notes,
                       source=file_fingerprint(s), reading=table.reading())
    if low.endswith(".npz"):
        arrays = load_npz(s)
        given = arrays.get("class_names")
        given = [str(c) for c in given.tolist()] if given is not None else None
        if "X_test" in arrays:
            y_all, names = encode_labels(np.concatenate([arrays["y"], arrays["y_test"]]), task, given)
            _max_classes(names, max_classes)
            m = arrays["y"].shape[0]
            parts = (arrays["X"], y_all[:m], arrays["X_test"], y_all[m:])
        else:
            y, names = encode_labels(arrays["y"], task, given)
            _max_classes(names, max_classes)
            parts = (arrays["X"], y, arrays["X"][:0], y[:0]) if test_fraction == 0 else split(
                arrays["X"], y, test_fraction, seed, stratify=names is not None)
        return Dataset(Path(s).stem, *parts, class_names=names, source=file_fingerprint(s))
    raise DataError(f"unknown data spec {text!r}", "valid forms: " + ", ".join(SPEC_FORMS))
