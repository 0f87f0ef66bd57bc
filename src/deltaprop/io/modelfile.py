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
import secrets
import struct
from pathlib import Path

import numpy as np

from deltaprop.errors import DeltapropError, ModelFileError

__all__ = ["save", "load", "read_header", "write_tensors", "read_tensors", "atomic_write",
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


def write_tensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Write named arrays (and a str → str ``metadata`` map) as a safetensors file, atomically (see
    :func:`atomic_write`). Everything is encoded before any file is touched, so a failure leaves
    ``path`` as it was."""
    head, chunks = _encode(tensors, metadata)
    try:
        atomic_write(path, [head, *chunks])
    except OSError as exc:
        raise ModelFileError(f"cannot write the model file {path}: {exc.strerror or exc}", _SAVE_HINT) from None


def atomic_write(path, chunks) -> None:
    """Write the byte strings ``chunks`` to ``path`` so that ``path`` is never half written: into a
    temporary file in the same directory, flushed and fsynced, then renamed over ``path``. A failure
    (raised as OSError) leaves any existing ``path`` untouched and no temporary file behind."""
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        chunks = [chunks]
    path = Path(os.fspath(path))
    directory = path.parent
    tmp = None
    try:
        # A name in the target's own directory, so that os.replace is a rename, never a copy.
        for _ in range(100):
            tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 collisions of 48 random bits
            raise FileExistsError(f"no free temporary name in {directory}")
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_directory(directory)
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible everywhere (Windows), so best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_FOREIGN = [  # (leading bytes, what the file probably is)
    (b"PK\x03\x04", "a zip archive (a NumPy .npz, a PyTorch .pt or a Keras file?)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x89HDF", "an HDF5 file (Keras .h5?)"),
    (b"\x1f\x8b", "gzip-compressed"),
    (b"\x80", "a Python pickle, and deltaprop never unpickles files"),
    (b"{", "a JSON text file"),
]


def _looks_like(start: bytes) -> str:
    """'; it looks like ...' for a file that fails the checks and starts like a known foreign format."""
    for magic, what in _FOREIGN:
        if start.startswith(magic):
            return f"; it looks like {what}"
    return ""


_NOT_MODEL_HINT = "pass a file written by deltaprop.save(net, path) or `deltaprop train`; if it was one, it is damaged"


def _header_span(path: Path, f, size: int) -> int:
    """Check the first 8 bytes and return the header length n (2 ≤ n ≤ size − 8, ≤ MAX_HEADER_BYTES)."""
    if size == 0:
        raise ModelFileError(f"{path} is empty", _NOT_MODEL_HINT)
    start = f.read(8)
    if size < 8:
        raise ModelFileError(f"{path} is too short for a model file: {size} bytes, and the length prefix alone "
                             f"takes 8{_looks_like(start)}", _NOT_MODEL_HINT)
    # Only a failing file is compared with foreign formats: a valid length can start with the same byte.
    (n,) = struct.unpack("<Q", start)
    if n > MAX_HEADER_BYTES or n > size - 8 or n < 2:
        why = (f"over the {MAX_HEADER_BYTES:,}-byte limit" if n > MAX_HEADER_BYTES
               else f"but only {size - 8:,} bytes follow the prefix" if n > size - 8 else "too small for a header")
        raise ModelFileError(f"{path} is not a readable model file: it declares a header of {n:,} bytes, "
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
        raise ModelFileError(f"{path}: the header is not valid JSON ({exc}){_looks_like(start)}",
                             "the file is garbled or of another kind; " + _NOT_MODEL_HINT) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: the header is a JSON {type(header).__name__}, not an object",
                             "the file is garbled or not a model file")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(f"{path}: __metadata__ must map strings to strings", "the file is garbled")
    return header


def _tensor_table(path: Path, header: dict, data_size: int) -> dict:
    """{name: (numpy dtype, shape, begin, end)} after checking every entry and that the tensors tile the
    data section exactly: contiguous from 0, no overlap, no gap, nothing after the last."""
    table = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{path}: tensor {name!r}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(f"{where} must be described by exactly dtype, shape and data_offsets", "the file is garbled")
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(code, str) or code not in _DTYPES:
            raise ModelFileError(f"{where} has unknown dtype {code!r}", f"known: {', '.join(_DTYPES)}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise ModelFileError(f"{where} has shape {shape!r}; expected a list of whole numbers ≥ 0", "the file is garbled")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise ModelFileError(f"{where} has data_offsets {offsets!r}; expected [begin, end] with 0 ≤ begin ≤ end",
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
            raise ModelFileError(f"{path}: tensor {name!r} starts at byte {begin:,}, which {problem}",
                                 "the file is garbled")
        position = end
    if position != data_size:
        raise ModelFileError(f"{path}: the tensors cover {position:,} bytes, but {data_size:,} follow the header",
                             "the file is garbled or has data appended; save the model again")
    return table


def _open_checked(path) -> tuple[Path, dict, bytes]:
    """(path, header, data section) of a structurally valid safetensors file."""
    path = Path(os.fspath(path))
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file", "pass the path of a file written by net.save")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            n = _header_span(path, f, size)
            raw = f.read(n)
            data = f.read(size - 8 - n)
            f.seek(0)
            start = f.read(8)
    except FileNotFoundError:
        raise ModelFileError(f"no such model file: {path}",
                             "check the path; models are written by deltaprop.save(net, path)") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read the model file {path}: {exc.strerror or exc}",
                             "check the path and its permissions") from None
    if len(raw) != n or len(data) != size - 8 - n:
        raise ModelFileError(f"{path} changed size while it was read", "read it again once it is written")
    header = _parse_header(path, raw, start)
    return path, header, data


def read_tensors(path) -> tuple[dict, dict]:
    """({name: array (native byte order, a fresh copy)}, metadata) of a safetensors file, checked
    entry by entry before any bytes are interpreted."""
    path, header, data = _open_checked(path)
    table = _tensor_table(path, header, len(data))
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
    architecture = {"sizes": [int(s) for s in net.sizes], "activations": list(net.activations),
                    "loss": net.loss.name}
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
    path, header, data = _open_checked(path)
    table = _tensor_table(path, header, len(data))
    info = _check_metadata(path, header.get("__metadata__", {}))
    _check_tensors(path, table, info)
    info["tensors"] = {name: (dt.name, shape) for name, (dt, shape, _, _) in table.items()}
    return info


def _check_metadata(path: Path, metadata: dict) -> dict:
    if metadata.get("format") != FORMAT_NAME:
        found = f"format {metadata['format']!r}" if "format" in metadata else "no deltaprop header"
        raise ModelFileError(f"{path} is a safetensors file but not a deltaprop model ({found})",
                             "deltaprop reads the files deltaprop.save(net, path) writes; convert other networks with "
                             "deltaprop import FILE.onnx, deltaprop.from_torch(module) or deltaprop.from_sklearn(est)")
    version = metadata.get("format_version", "")
    if not version.isdigit():
        raise ModelFileError(f"{path}: format_version {version!r} is not a whole number", "the file is garbled")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(f"{path} has model format version {version}; this deltaprop reads up to {FORMAT_VERSION}",
                             f"upgrade deltaprop (it was written by deltaprop {metadata.get('deltaprop_version', '?')})")
    if int(version) < 1:
        raise ModelFileError(f"{path}: format_version {version} does not exist", "the file is garbled")
    dtype = metadata.get("dtype")
    if dtype not in _MODEL_DTYPES.values():
        raise ModelFileError(f"{path}: dtype {dtype!r} is not float32 or float64", "the file is garbled")
    parsed = {}
    for key in ("architecture", "meta"):
        try:
            parsed[key] = json.loads(metadata.get(key, ""), object_pairs_hook=_no_duplicates,
                                     parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ModelFileError(f"{path}: the {key} entry is not valid JSON ({exc})", "the file is garbled") from None
        if not isinstance(parsed[key], dict):
            raise ModelFileError(f"{path}: the {key} entry must be a JSON object", "the file is garbled")
    arch = parsed["architecture"]
    sizes, activations, loss = arch.get("sizes"), arch.get("activations"), arch.get("loss")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes)):
        raise ModelFileError(f"{path}: architecture sizes {sizes!r} must list at least two whole numbers ≥ 1",
                             "the file is garbled")
    if not isinstance(activations, list) or len(activations) != len(sizes) - 1 \
            or not all(isinstance(a, str) for a in activations):
        raise ModelFileError(f"{path}: architecture activations {activations!r} must name one activation per layer "
                             f"({len(sizes) - 1})", "the file is garbled")
    if not isinstance(loss, str):
        raise ModelFileError(f"{path}: architecture loss {loss!r} must be a name", "the file is garbled")
    return {"format_version": int(version), "deltaprop_version": metadata.get("deltaprop_version", ""),
            "dtype": dtype, "architecture": arch, "meta": parsed["meta"]}


def _check_tensors(path: Path, table: dict, info: dict) -> None:
    sizes = info["architecture"]["sizes"]
    expected = {}
    for l in range(1, len(sizes)):
        expected[f"W{l}"] = (sizes[l], sizes[l - 1])
        expected[f"b{l}"] = (sizes[l],)
    missing, extra = sorted(set(expected) - set(table)), sorted(set(table) - set(expected))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unexpected {', '.join(extra)}"] if extra else [])
        raise ModelFileError(f"{path}: the tensors do not match the architecture {sizes} ({'; '.join(parts)})",
                             "the file is garbled or was not written by deltaprop")
    for name, shape in expected.items():
        dt, got, _, _ = table[name]
        if got != shape:
            raise ModelFileError(f"{path}: {name} has shape {got}, but sizes {sizes} need {shape} "
                                 "(W_l is (n_l, n_{l-1}), b_l is (n_l,))", "the file is garbled")
        if dt.name != info["dtype"]:
            raise ModelFileError(f"{path}: {name} is {dt.name} in a {info['dtype']} model", "the file is garbled")


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

    path, header, data = _open_checked(path)
    table = _tensor_table(path, header, len(data))
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
                raise ModelFileError(f"{path}: {name} holds NaN or infinite values",
                                     "the model diverged before it was saved, or the file is damaged; retrain it")
            pair.append(arr.astype(info["dtype"]))  # a native-order copy
        weights.append(tuple(pair))
    try:
        net = Network.from_weights(weights, arch["activations"], arch["loss"], dtype=info["dtype"])
    except DeltapropError as exc:
        raise ModelFileError(f"{path}: the architecture is not one deltaprop can build: {exc.message}",
                             exc.hint or "the file is garbled") from None
    meta = info["meta"]
    if "scaler" in meta:
        from deltaprop.io.preprocessing import Scaler

        try:
            scaler = Scaler.from_dict(meta["scaler"])
        except DeltapropError as exc:
            raise ModelFileError(f"{path}: the stored input scaling is invalid: {exc.message}",
                                 "the file is garbled") from None
        if scaler.n_features is not None and scaler.n_features != net.sizes[0]:
            raise ModelFileError(f"{path}: the input scaling is for {scaler.n_features} features, the network "
                                 f"takes {net.sizes[0]}", "the file is garbled")
    net.meta = meta
    return net
