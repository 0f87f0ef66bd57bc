"""Model files: the weights in the safetensors layout, the architecture and ``net.meta`` in its header.

Layout (https://github.com/huggingface/safetensors, written and read here with NumPy alone):

    bytes 0..8          n, the header length, unsigned 64-bit little-endian
    bytes 8..8+n        JSON header (UTF-8, padded with spaces to a multiple of 8):
                          {"W1": {"dtype": "F32", "shape": [n_1, n_0], "data_offsets": [0, 4·n_1·n_0]},
                           "b1": {...}, ..., "__metadata__": {"format": "deltaprop-model", ...}}
    bytes 8+n..end      the tensors' raw little-endian bytes, back to back, offsets relative to 8+n

``W_l`` has shape (n_l, n_{l−1}) and ``b_l`` (n_l,), l = 1..L. The ``__metadata__`` map (strings only,
as the format requires) holds ``format`` = "deltaprop-model", ``format_version`` (an integer),
``deltaprop_version``, ``dtype``, ``architecture`` (JSON: sizes, activations, loss) and ``meta``
(JSON: ``net.meta``, e.g. classes, the input scaling, a training summary).

Nothing is ever unpickled or executed: :func:`load` reads a length, checks it, parses JSON and copies
bytes into arrays whose dtype, shape and position it has validated first. Every problem is a
:class:`~deltaprop.errors.ModelFileError` (exit code 3) saying what is wrong and what to do.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np

from deltaprop.errors import ConfigError, DeltapropError, ModelFileError
from deltaprop.io.files import atomic_write, check_memory, open_regular, short, shown

__all__ = ["save", "load", "read_header", "write_tensors", "read_tensors", "atomic_write", "digest",
           "FORMAT_NAME", "FORMAT_VERSION", "MAX_HEADER_BYTES"]

FORMAT_NAME = "deltaprop-model"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100_000_000  # the limit the safetensors library itself enforces

# safetensors dtype names <-> little-endian NumPy dtypes.
_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "|i1", "I16": "<i2", "I32": "<i4", "I64": "<i8",
           "U8": "|u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "|b1"}
_NAMES = {np.dtype(v).newbyteorder("=") if np.dtype(v).itemsize > 1 else np.dtype(v): k for k, v in _DTYPES.items()}
_MODEL_DTYPES = {"F32": "float32", "F64": "float64"}

_SAVE_HINT = "check that the directory exists and is writable"


# -- the generic layer: named tensors + a string map ---------------------------------------------
def _encode(tensors: dict, metadata: dict | None) -> tuple[bytes, list]:
    """(header bytes with their length prefix, [little-endian tensor bytes]) for ``write_tensors``."""
    header, chunks, offset = {}, [], 0
    for name, arr in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ModelFileError(f"tensor name {name!r} is not allowed", "use a string other than '__metadata__'")
        arr = np.asarray(arr)
        key = arr.dtype.newbyteorder("=") if arr.dtype.itemsize > 1 else arr.dtype
        if key not in _NAMES:
            raise ModelFileError(f"tensor {name!r} has dtype {arr.dtype}, which the safetensors layout cannot store",
                                 "convert it to float32 or float64")
        code = _NAMES[key]
        data = np.ascontiguousarray(arr, dtype=_DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ModelFileError("safetensors metadata must map strings to strings", "encode values as JSON strings")
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad so the tensor data starts 8-byte aligned, as safetensors does
    return struct.pack("<Q", len(text)) + text, chunks


def digest(entries: dict, tensors: dict) -> str:
    """``sha256:HEX`` of ``entries`` (as sorted JSON) and every tensor (its name, little-endian dtype, shape
    and bytes, in name order): the same digest from the arrays written and from the arrays read back, so
    that files written together can be matched, and damage after a write (a flipped bit on disk, a bad
    copy) found where layout checks cannot see it (a weight, a generator state)."""
    import hashlib

    h = hashlib.sha256()
    h.update(json.dumps(entries, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        little = arr.dtype.newbyteorder("<") if arr.dtype.itemsize > 1 else arr.dtype
        h.update(json.dumps([name, little.str, list(arr.shape)]).encode("utf-8"))
        h.update(np.ascontiguousarray(arr, dtype=little).tobytes())
    return "sha256:" + h.hexdigest()


def write_tensors(path, tensors: dict, metadata: dict | None = None, what: str = "model file") -> None:
    """Write named arrays (and a str → str ``metadata`` map) as a safetensors file, atomically (see
    :func:`atomic_write`). Everything is encoded before any file is touched, so a failure leaves
    ``path`` as it was; ``what`` names the file in the error ("model file", "checkpoint")."""
    head, chunks = _encode(tensors, metadata)
    try:
        atomic_write(path, [head, *chunks])
    except OSError as exc:
        where = Path(os.fspath(path)).parent
        from deltaprop.io.files import fmt_bytes, free_space

        free = free_space(where if str(where) else ".")
        room = f" ({fmt_bytes(free)} free on its disk)" if free is not None else ""
        raise ModelFileError(f"cannot write the {what} {shown(path)}: {exc.strerror or exc}{room}",
                             _SAVE_HINT) from None


_FOREIGN = [  # (leading bytes, what the file probably is)
    (b"PK\x03\x04", "a zip archive (a NumPy .npz, a PyTorch .pt or a Keras file?)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x89HDF", "an HDF5 file (Keras .h5?)"),
    (b"\x1f\x8b", "gzip-compressed"),
    (b"\x80", "a Python pickle (an estimator saved with joblib.dump or pickle.dump loads with "
              "joblib.load, from a source you trust; est.save(path) writes the model file), and deltaprop "
              "never unpickles files"),
    (b"{", "a JSON text file"),
]


def _looks_like(start: bytes) -> str:
    """'; it looks like ...' for a file that fails the checks and starts like a known foreign format."""
    for magic, what in _FOREIGN:
        if start.startswith(magic):
            return f"; it looks like {what}"
    if len(start) >= 4 and all(32 <= c < 127 or c in b"\t\r\n" for c in start):
        # A CSV of inputs where the model was expected (deltaprop predict INPUT MODEL: the order swapped?).
        return "; it looks like a text file (a CSV of inputs? the model file is the first argument)"
    if start[:1] == b"\x08" and start[2:3] in (b"\x12", b"\x1a", b"\x3a"):
        return "; it looks like an ONNX model (deltaprop reads one when its name ends in .onnx)"
    return ""


_NOT_MODEL_HINT = "pass a file written by deltaprop.save(net, path) or `deltaprop train`; if it was one, it is damaged"


def _header_span(path: Path, f, size: int) -> int:
    """Check the first 8 bytes and return the header length n (2 ≤ n ≤ size − 8, ≤ MAX_HEADER_BYTES)."""
    if size == 0:
        raise ModelFileError(f"{shown(path)} is empty", _NOT_MODEL_HINT)
    start = f.read(8)
    if size < 8:
        raise ModelFileError(f"{shown(path)} is too short for a model file: {size} bytes, and the length prefix alone "
                             f"takes 8{_looks_like(start)}", _NOT_MODEL_HINT)
    # Only a failing file is compared with foreign formats: a valid length can start with the same byte.
    (n,) = struct.unpack("<Q", start)
    if n > MAX_HEADER_BYTES or n > size - 8 or n < 2:
        why = (f"over the {MAX_HEADER_BYTES:,}-byte limit" if n > MAX_HEADER_BYTES
               else f"but only {size - 8:,} bytes follow the prefix" if n > size - 8 else "too small for a header")
        raise ModelFileError(f"{shown(path)} is not a readable model file: it declares a header of {n:,} bytes, "
                             f"{why}{_looks_like(start)}", "the file is truncated, garbled or of another kind; "
                             + _NOT_MODEL_HINT)
    return n


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate key(s) {', '.join(map(repr, dup))}")
    return dict(pairs)


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _parse_header(path: Path, raw: bytes, start: bytes = b"") -> dict:
    try:
        text = raw.decode("utf-8")
        if not text.startswith("{"):
            raise ValueError("it does not start with '{'")
        header = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{shown(path)}: the header is not valid JSON ({exc}){_looks_like(start)}",
                             "the file is garbled or of another kind; " + _NOT_MODEL_HINT) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{shown(path)}: the header is a JSON {type(header).__name__}, not an object",
                             "the file is garbled or not a model file")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(f"{shown(path)}: __metadata__ must map strings to strings", "the file is garbled")
    return header


def _tensor_table(path: Path, header: dict, data_size: int) -> dict:
    """{name: (numpy dtype, shape, begin, end)} after checking every entry and that the tensors tile the
    data section exactly: contiguous from 0, no overlap, no gap, nothing after the last."""
    table = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{shown(path)}: tensor {short(name)}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(f"{where} must be described by exactly dtype, shape and data_offsets", "the file is garbled")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(code, str) or code not in _DTYPES:
            raise ModelFileError(f"{where} has unknown dtype {short(code)}", f"known: {', '.join(_DTYPES)}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise ModelFileError(f"{where} has shape {short(shape)}; expected a list of whole numbers ≥ 0", "the file is garbled")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise ModelFileError(f"{where} has data_offsets {short(offsets)}; expected [begin, end] with 0 ≤ begin ≤ end",
                                 "the file is garbled")
        dtype = np.dtype(_DTYPES[code])
        nbytes = math.prod(shape) * dtype.itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise ModelFileError(f"{where}: shape {shape} of {code} needs {nbytes:,} bytes but its offsets "
                                 f"{offsets} span {offsets[1] - offsets[0]:,}", "the file is garbled")
        if offsets[1] > data_size:
            raise ModelFileError(f"{where} ends at byte {offsets[1]:,} of the data, which has only {data_size:,}",
                                 "the file is truncated; save the model again")
        table[name] = (dtype, tuple(shape), offsets[0], offsets[1])
    position = 0
    for name, (_, _, begin, end) in sorted(table.items(), key=lambda item: (item[1][2], item[1][3])):
        if begin != position:
            problem = "overlaps the tensor before it" if begin < position else f"leaves a gap of {begin - position} bytes"
            raise ModelFileError(f"{shown(path)}: tensor {short(name)} starts at byte {begin:,}, which {problem}",
                                 "the file is garbled")
        position = end
    if position != data_size:
        raise ModelFileError(f"{shown(path)}: the tensors cover {position:,} bytes, but {data_size:,} follow the header",
                             "the file is garbled or has data appended; save the model again")
    return table


def _open_checked(path, what: str = "model file") -> tuple[Path, dict, dict, bytes]:
    """(path, header, tensor table, data section) of a structurally valid safetensors file. Only a
    regular file is opened (a FIFO or a device would block or never end); the header length and every
    tensor's offsets are checked against the file's size, and the memory the data needs against the
    memory left, before the data is read."""
    path = Path(os.fspath(path))
    hint = ("check the path; models are written by deltaprop.save(net, path) or `deltaprop train` "
            "(RUN_DIR/model.safetensors)")
    with open_regular(path, what, ModelFileError, hint) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            n = _header_span(path, f, size)
            raw = f.read(n)
            if len(raw) != n:
                raise ModelFileError(f"{shown(path)} changed size while it was read", "read it again once it is written")
            header = _parse_header(path, raw, struct.pack("<Q", n))
            table = _tensor_table(path, header, size - 8 - n)
            check_memory(size - 8 - n, f"reading the tensors of {shown(path)}",
                         "free memory, or load the file on a machine with more", ModelFileError)
            data = f.read(size - 8 - n)
        except OSError as exc:
            raise ModelFileError(f"cannot read the {what} {shown(path)}: {exc.strerror or exc}",
                                 "check the path and its permissions") from None
    if len(data) != size - 8 - n:
        raise ModelFileError(f"{shown(path)} changed size while it was read", "read it again once it is written")
    return path, header, table, data


def read_tensors(path) -> tuple[dict, dict]:
    """({name: array (native byte order, a fresh copy)}, metadata) of a safetensors file, checked
    entry by entry before any bytes are interpreted."""
    path, header, table, data = _open_checked(path)
    tensors = {name: np.frombuffer(data, dtype=dt, count=math.prod(shape), offset=begin)
               .reshape(shape).astype(dt.newbyteorder("=") if dt.itemsize > 1 else dt, copy=True)
               for name, (dt, shape, begin, _) in table.items()}
    return tensors, dict(header.get("__metadata__", {}))


# -- the deltaprop model -------------------------------------------------------------------------
def _jsonable(value):
    """NumPy scalars and arrays as Python numbers and lists (for ``json.dumps(default=...)``)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _finite_json(value):
    """The same structure with non-finite floats as None: the header stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v) for v in value]
    return value


def save(net, path) -> None:
    """Write ``net`` (weights, architecture, dtype, ``net.meta``) to ``path`` atomically.

    Tensors ``W1, b1, ..., WL, bL``; ``net.meta`` must be JSON-able (NumPy numbers and arrays are
    converted; NaN and infinities become null). A failure leaves any existing ``path`` untouched.
    """
    import deltaprop

    if not (hasattr(net, "layers") and hasattr(net, "dtype") and hasattr(net, "activations")):
        from deltaprop.errors import InputTypeError

        raise InputTypeError(
            f"save needs a deltaprop Network (save(net, path)), got a {type(net).__name__}",
            "a fitted estimator becomes one with deltaprop.from_sklearn(est) (or est.to_network()), a PyTorch "
            "module with deltaprop.from_torch(module, output=...)")
    dtype = np.dtype(net.dtype)
    if dtype.name not in _MODEL_DTYPES.values():
        raise ModelFileError(f"cannot save a {dtype} network", "model files hold float32 or float64 weights")
    tensors = {}
    for l, layer in enumerate(net.layers, 1):
        for name, arr in ((f"W{l}", layer.W), (f"b{l}", layer.b)):
            if np.asarray(arr).dtype != dtype:
                raise ModelFileError(f"{name} is {np.asarray(arr).dtype} in a {dtype} network",
                                     f"cast every parameter to {dtype} (net.astype)")
            tensors[name] = arr
    try:
        meta = json.loads(json.dumps(getattr(net, "meta", {}) or {}, default=_jsonable))
        meta_text = json.dumps(_finite_json(meta), allow_nan=False, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"net.meta cannot be stored as JSON: {exc}",
                             "keep net.meta to dicts, lists, strings, numbers, booleans and None") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"net.meta must be a dict, not {type(meta).__name__}", "set net.meta = {...}")
    config = net.config()
    architecture = {k: config[k] for k in ("sizes", "activations", "loss")}  # the dtype has its own entry
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "deltaprop_version": str(deltaprop.__version__),
        "dtype": dtype.name,
        "architecture": json.dumps(architecture, separators=(",", ":")),
        "meta": meta_text,
    }
    write_tensors(path, tensors, metadata)


def read_header(path) -> dict:
    """What a model file says about itself, without building the network: ``format_version``,
    ``deltaprop_version``, ``dtype``, ``architecture`` (dict), ``meta`` (dict), ``tensors``
    ({name: (dtype, shape)}). Raises ModelFileError for anything that is not a deltaprop model."""
    path, header, table, data = _open_checked(path)
    info = _check_metadata(path, header.get("__metadata__", {}))
    _check_tensors(path, table, info)
    check_meta(path, info["meta"], info["config"])
    info["tensors"] = {name: (dt.name, shape) for name, (dt, shape, _, _) in table.items()}
    return info


def format_version(path, metadata: dict, kind: str, newest: int) -> int:
    """The file's format_version as an int in 1..``newest``, or a ModelFileError: only ASCII digits
    (``"²"`` is a digit to str.isdigit), at most 6 of them."""
    version = metadata.get("format_version", "")
    if not (isinstance(version, str) and version.isascii() and version.isdigit() and len(version) <= 6):
        raise ModelFileError(f"{shown(path)}: format_version {short(version)} is not a whole number",
                             "the file is garbled")
    if int(version) > newest:
        raise ModelFileError(f"{shown(path)} has {kind} format version {version}; this deltaprop reads up to {newest}",
                             f"upgrade deltaprop (it was written by deltaprop "
                             f"{short(metadata.get('deltaprop_version', '?'), 40)})")
    if int(version) < 1:
        raise ModelFileError(f"{shown(path)}: format_version {version} does not exist", "the file is garbled")
    return int(version)


def parse_json_entry(path, metadata: dict, key: str, hint: str = "the file is garbled") -> dict:
    """The JSON object stored as the string ``metadata[key]``: unique keys, no NaN, a dict."""
    text = metadata.get(key)
    if not isinstance(text, str):
        raise ModelFileError(f"{shown(path)} has no {key} entry", hint)
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{shown(path)}: the {key} entry is not valid JSON ({short(str(exc), 200)})",
                             hint) from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{shown(path)}: the {key} entry must be a JSON object", hint)
    return value


def check_architecture(path, arch: dict, dtype, hint: str = "the file is garbled") -> dict:
    """The stored architecture record with the file's dtype, checked by :meth:`Network.check_config`."""
    from deltaprop.model import Network

    try:
        return Network.check_config({**arch, "dtype": dtype})
    except ConfigError as exc:
        raise ModelFileError(f"{shown(path)}: {exc.message}", hint) from None


def _check_metadata(path: Path, metadata: dict) -> dict:
    if metadata.get("format") != FORMAT_NAME:
        found = f"format {short(metadata['format'])}" if "format" in metadata else "no deltaprop header"
        raise ModelFileError(f"{shown(path)} is a safetensors file but not a deltaprop model ({found})",
                             "deltaprop reads the files deltaprop.save(net, path) writes; convert other networks with "
                             "deltaprop import FILE.onnx, deltaprop.from_torch(module) or deltaprop.from_sklearn(est)")
    version = format_version(path, metadata, "model", FORMAT_VERSION)
    dtype = metadata.get("dtype")
    if dtype not in _MODEL_DTYPES.values():
        raise ModelFileError(f"{shown(path)}: dtype {short(dtype)} is not float32 or float64", "the file is garbled")
    if "architecture" not in metadata:
        raise ModelFileError(f"{shown(path)}: the architecture entry is not valid JSON (it is missing)",
                             "the file is garbled")
    arch = parse_json_entry(path, metadata, "architecture")
    meta = parse_json_entry(path, {"meta": metadata.get("meta", "")}, "meta")
    config = check_architecture(path, arch, dtype)
    return {"format_version": version, "deltaprop_version": short(metadata.get("deltaprop_version", ""), 40).strip("'"),
            "dtype": dtype, "architecture": {k: config[k] for k in ("sizes", "activations", "loss")},
            "config": config, "meta": meta}


def check_meta(path, meta: dict, config: dict) -> dict:
    """``meta`` as the command writes it (classes, feature names, image shape, task, data, training),
    each known field checked against the architecture; a ModelFileError names the field. Fields
    deltaprop does not know (a user's own) are kept as they are."""
    from deltaprop.validation import check_number

    sizes, output = config["sizes"], config["activations"][-1]

    def fail(what: str):
        raise ModelFileError(f"{shown(path)}: meta {what}", "the file is garbled; save the model again")

    def label(v) -> bool:
        # Class labels are kept as the model held them: text, or the integers, booleans and finite numbers
        # of a scikit-learn-style classifier's classes_ (an estimator saved with y = 0..9 must load again).
        return (isinstance(v, str) and len(v) <= 1000) or type(v) in (int, bool) or (
            type(v) is float and math.isfinite(v))

    def names(key, n):
        value = meta.get(key)
        if value is None:
            return
        text_only = key != "classes"
        if not isinstance(value, list) or not all(
                (isinstance(v, str) and len(v) <= 1000) if text_only else label(v) for v in value):
            fail(f"{key} is {short(value)}; expected a list of names (text)"
                 + ("" if text_only else ", whole numbers or booleans"))
        if n is not None and len(value) != n:
            fail(f"{key} lists {len(value)} names; the network has {n}")

    classifier = config["loss"] in ("cross_entropy", "binary_cross_entropy")
    k = sizes[-1]
    n_classes = 2 if (output == "sigmoid" and k == 1) else k
    names("classes", n_classes if classifier else None)
    names("feature_names", sizes[0])
    shape = meta.get("image_shape")
    if shape is not None and (not isinstance(shape, list) or not 2 <= len(shape) <= 3
                              or not all(type(d) is int and d >= 1 for d in shape) or math.prod(shape) != sizes[0]):
        fail(f"image_shape {short(shape)} must be 2 or 3 whole numbers whose product is the {sizes[0]} inputs")
    if meta.get("task") not in (None, "classification", "regression"):
        fail(f"task {short(meta['task'])} is not classification or regression")
    for key in ("data", "training"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            fail(f"{key} is {short(meta[key])}; expected a mapping")
    data = meta.get("data") or {}
    rules = {"test_fraction": dict(low=0, high=1, high_open=True), "seed": dict(low=0, integer=True)}
    for key, rule in rules.items():
        if key in data:
            try:
                check_number(data[key], f"data {key}", allow_none=True, error=ModelFileError, **rule)
            except ModelFileError as exc:
                fail(exc.message)
    for key in ("spec", "name"):
        if data.get(key) is not None and not (isinstance(data[key], str) and len(data[key]) <= 4096):
            fail(f"data {key} is {short(data[key])}; expected text")
    if data.get("target") is not None and not (type(data["target"]) is int or isinstance(data["target"], str)):
        fail(f"data target is {short(data['target'])}; expected a column name or number")
    if data.get("task") not in (None, "classification", "regression"):
        fail(f"data task {short(data['task'])} is not classification or regression")
    fp = data.get("fingerprint")
    if fp is not None and not (isinstance(fp, dict) and type(fp.get("bytes")) is int and isinstance(fp.get("sha256"), str)):
        fail(f"data fingerprint is {short(fp)}; expected bytes and sha256")
    training = meta.get("training") or {}
    for key, rule in {"epochs": dict(low=0, integer=True), "best_epoch": dict(low=1, integer=True),
                      "batch_size": dict(low=1, integer=True), "l2": dict(low=0), "seconds": dict(low=0)}.items():
        if key in training:
            try:
                check_number(training[key], f"training {key}", allow_none=True, error=ModelFileError, **rule)
            except ModelFileError as exc:
                fail(exc.message)
    for key in ("status", "stop_reason", "optimizer", "finished", "run_id"):
        if training.get(key) is not None and not (isinstance(training[key], str) and len(training[key]) <= 4096):
            fail(f"training {key} is {short(training[key])}; expected text")
    test = training.get("test")
    if test is not None and (not isinstance(test, dict) or not all(
            v is None or (type(v) in (int, float)) for v in test.values())):
        fail(f"training test is {short(test)}; expected a mapping of names to numbers")
    return meta


def _check_tensors(path: Path, table: dict, info: dict) -> None:
    sizes = info["architecture"]["sizes"]
    expected = {}
    for l in range(1, len(sizes)):
        expected[f"W{l}"] = (sizes[l], sizes[l - 1])
        expected[f"b{l}"] = (sizes[l],)
    missing, extra = sorted(set(expected) - set(table)), sorted(set(table) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {short(', '.join(extra), 200)[1:-1]}"] if extra else [])
        raise ModelFileError(f"{shown(path)}: the tensors do not match the architecture {sizes} ({'; '.join(parts)})",
                             "the file is garbled or was not written by deltaprop")
    for name, shape in expected.items():
        dt, got, _, _ = table[name]
        if got != shape:
            raise ModelFileError(f"{shown(path)}: {name} has shape {got}, but sizes {sizes} need {shape} "
                                 "(W_l is (n_l, n_{l-1}), b_l is (n_l,))", "the file is garbled")
        if dt.name != info["dtype"]:
            raise ModelFileError(f"{shown(path)}: {name} is {dt.name} in a {info['dtype']} model", "the file is garbled")


def load(path):
    """The Network saved in ``path`` by :func:`save`, with ``net.meta`` restored.

    Checks, in order, before trusting anything: the file exists and is not a directory; it does not
    start like a pickle, zip, npy, HDF5, gzip or JSON file; the 8-byte header length is at most
    ``MAX_HEADER_BYTES`` and fits the file; the header is JSON with unique keys; every tensor has a
    known dtype, a shape, and offsets that tile the data exactly; the format name and version; the
    architecture (sizes, activation and loss names); that W_l is (n_l, n_{l−1}) and b_l (n_l,) in the
    model's dtype; finite weights; a valid input scaling in ``meta["scaler"]`` if there is one.
    """
    from deltaprop.model import Network

    path, header, table, data = _open_checked(path)
    info = _check_metadata(path, header.get("__metadata__", {}))
    _check_tensors(path, table, info)
    arch = info["architecture"]
    weights = []
    for l in range(1, len(arch["sizes"])):
        pair = []
        for name in (f"W{l}", f"b{l}"):
            dt, shape, begin, _ = table[name]
            arr = np.frombuffer(data, dtype=dt, count=math.prod(shape), offset=begin).reshape(shape)
            if not np.isfinite(arr).all():
                raise ModelFileError(f"{shown(path)}: {name} holds NaN or infinite values",
                                     "the model diverged before it was saved, or the file is damaged; retrain it")
            pair.append(arr.astype(info["dtype"]))  # a native-order copy
        weights.append(tuple(pair))
    try:
        net = Network.from_config(info["config"], weights)
    except DeltapropError as exc:
        raise ModelFileError(f"{shown(path)}: the architecture is not one deltaprop can build: {exc.message}",
                             exc.hint or "the file is garbled") from None
    meta = check_meta(path, info["meta"], info["config"])
    if "scaler" in meta:
        from deltaprop.io.preprocessing import Scaler

        try:
            scaler = Scaler.from_dict(meta["scaler"])
        except DeltapropError as exc:
            raise ModelFileError(f"{shown(path)}: the stored input scaling is invalid: {exc.message}",
                                 "the file is garbled") from None
        if scaler.n_features is not None and scaler.n_features != net.sizes[0]:
            raise ModelFileError(f"{shown(path)}: the input scaling is for {scaler.n_features} features, the network "
                                 f"takes {net.sizes[0]}", "the file is garbled")
    net.meta = meta
    return net
