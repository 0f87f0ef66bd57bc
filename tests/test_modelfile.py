"""Model files: exact round trips, the safetensors layout both ways, and a refusal for every bad file.

Each damaged file is made by hand from a good one; every refusal must be a ModelFileError (exit 3).
"""

import json
import os
import pickle
import struct

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.errors import InputTypeError, ModelFileError
from deltaprop.io.modelfile import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    load,
    read_header,
    read_tensors,
    save,
    write_tensors,
)
from deltaprop.io.modelfile import save as dp_save
from deltaprop.io.preprocessing import Scaler


def make_net(dtype="float32", sizes=(4, 5, 3), hidden="tanh", output="softmax", seed=0):
    net = dp.Network.from_sizes(list(sizes), hidden=hidden, output=output, seed=seed, dtype=dtype)
    X = np.random.default_rng(1).normal(size=(7, sizes[0]))
    net.meta = {
        "classes": ["cat", "dog", "emu"][: sizes[-1]],
        "scaler": Scaler("standard").fit(X).to_dict(),
        "training": {"epochs": 3, "loss": [1.2, 0.9, 0.7], "optimizer": "adam"},
    }
    return net


def split_file(path):
    """(header dict, data bytes) of a safetensors file, read by hand."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def join_file(path, header, data, pad=True):
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


# -- round trips ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,output", [("tanh", "softmax"), ("relu", "sigmoid"), ("leaky_relu", "identity")])
def test_round_trip_is_bit_exact(tmp_path, dtype, hidden, output):
    net = make_net(dtype, sizes=(4, 6, 5, 3), hidden=hidden, output=output)
    path = tmp_path / "m.safetensors"
    dp_save(net, path)
    back = dp.load(path)
    assert back.sizes == net.sizes and back.activations == net.activations
    assert back.loss.name == net.loss.name and back.dtype == np.dtype(dtype)
    for a, b in zip(net.params(), back.params()):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    assert back.meta == net.meta
    X = np.random.default_rng(2).normal(size=(9, 4))
    np.testing.assert_array_equal(back.forward(X), net.forward(X))


def test_meta_with_numpy_values_and_nan(tmp_path):
    net = make_net()
    net.meta = {"acc": np.float32(0.5), "counts": np.arange(3), "pair": (1, 2), "nan": float("nan")}
    save(net, tmp_path / "m")
    assert load(tmp_path / "m").meta == {"acc": 0.5, "counts": [0, 1, 2], "pair": [1, 2], "nan": None}


def test_header_says_what_the_model_is(tmp_path):
    net = make_net("float64")
    save(net, tmp_path / "m")
    info = read_header(tmp_path / "m")
    assert info["format_version"] == FORMAT_VERSION and info["deltaprop_version"] == dp.__version__
    assert info["dtype"] == "float64"
    assert info["architecture"] == {"sizes": [4, 5, 3], "activations": ["tanh", "softmax"], "loss": "cross_entropy"}
    assert info["tensors"] == {"W1": ("float64", (5, 4)), "b1": ("float64", (5,)),
                               "W2": ("float64", (3, 5)), "b2": ("float64", (3,))}
    header, data = split_file(tmp_path / "m")
    assert header["__metadata__"]["format"] == FORMAT_NAME
    assert header["W1"] == {"dtype": "F64", "shape": [5, 4], "data_offsets": [0, 160]}
    assert len(data) == 8 * net.n_params
    (n,) = struct.unpack("<Q", (tmp_path / "m").read_bytes()[:8])
    assert n % 8 == 0  # tensor data starts 8-byte aligned, as the safetensors library writes it


def test_generic_tensors_round_trip(tmp_path):
    tensors = {"f16": np.array([1.5, -2], np.float16), "i64": np.arange(6, dtype=np.int64).reshape(2, 3),
               "u8": np.array([[255]], np.uint8), "flag": np.array([True, False]), "empty": np.zeros((0, 3), np.float32),
               "big_endian": np.array([1.0, 2.0], dtype=">f8")}
    write_tensors(tmp_path / "t", tensors, {"note": "hello"})
    got, meta = read_tensors(tmp_path / "t")
    assert meta == {"note": "hello"}
    for name, arr in tensors.items():
        assert got[name].dtype == arr.dtype.newbyteorder("=") and got[name].dtype.isnative
        np.testing.assert_array_equal(got[name], arr)


# -- interoperability with the safetensors package ------------------------------------------------
def test_files_open_in_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    net = make_net("float32")
    dp_save(net, tmp_path / "m.safetensors")
    tensors = st.load_file(str(tmp_path / "m.safetensors"))
    assert sorted(tensors) == ["W1", "W2", "b1", "b2"]
    for l, layer in enumerate(net.layers, 1):
        np.testing.assert_array_equal(tensors[f"W{l}"], layer.W)
        np.testing.assert_array_equal(tensors[f"b{l}"], layer.b)
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        meta = f.metadata()
    assert meta["format"] == FORMAT_NAME and json.loads(meta["meta"]) == net.meta


def test_files_from_the_safetensors_package_load(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    net = make_net("float64")
    save(net, tmp_path / "ours")
    _, meta = read_tensors(tmp_path / "ours")
    st.save_file({f"{k}{l}": getattr(layer, k) for l, layer in enumerate(net.layers, 1) for k in "Wb"},
                 str(tmp_path / "theirs"), metadata=meta)
    back = load(tmp_path / "theirs")
    for a, b in zip(net.params(), back.params()):
        assert a.tobytes() == b.tobytes()
    # and their generic files read back through the generic layer
    st.save_file({"x": np.arange(5, dtype=np.int32)}, str(tmp_path / "generic"))
    np.testing.assert_array_equal(read_tensors(tmp_path / "generic")[0]["x"], np.arange(5))


# -- refusals -------------------------------------------------------------------------------------
@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.safetensors"
    save(make_net(), path)
    return path


def refused(path, match):
    with pytest.raises(ModelFileError, match=match) as err:
        load(path)
    assert err.value.exit_code == 3 and err.value.hint
    return err.value


def test_missing_empty_directory(tmp_path):
    refused(tmp_path / "absent", "no such model file")
    refused(tmp_path, "is a directory")
    (tmp_path / "empty").write_bytes(b"")
    refused(tmp_path / "empty", "is empty")
    (tmp_path / "short").write_bytes(b"\x10\x00\x00")
    refused(tmp_path / "short", "too short")


def test_pickle_zip_npy_are_named_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    # A pickle that would create a file if it were ever unpickled.
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    for proto_payload in (pickle.dumps({"W1": [1.0]}, protocol=4), payload):
        (tmp_path / "p.pkl").write_bytes(proto_payload)
        with pytest.raises(ModelFileError):
            load(tmp_path / "p.pkl")
    assert not marker.exists()
    refused_p = pickle.dumps(make_net(), protocol=5)
    (tmp_path / "net.pkl").write_bytes(refused_p)
    assert "pickle" in refused(tmp_path / "net.pkl", "not a readable model file").message
    np.savez(tmp_path / "w.npz", W1=np.zeros(3))
    assert "zip" in refused(tmp_path / "w.npz", "not a readable model file").message
    np.save(tmp_path / "w.npy", np.zeros(3))
    assert "npy" in refused(tmp_path / "w.npy", "not a readable model file").message


def test_truncated_at_every_length(good):
    raw = good.read_bytes()
    for n in range(len(raw)):
        good.write_bytes(raw[:n])
        with pytest.raises(ModelFileError):
            load(good)


def test_appended_bytes(good):
    good.write_bytes(good.read_bytes() + b"\x00" * 4)
    refused(good, "the tensors cover .* but .* follow the header")


def test_huge_declared_header(tmp_path):
    (tmp_path / "huge").write_bytes(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}" * 10)
    refused(tmp_path / "huge", "over the 100,000,000-byte limit")
    (tmp_path / "long").write_bytes(struct.pack("<Q", 1000) + b"{}" * 10)
    refused(tmp_path / "long", "declares a header of 1,000 bytes, but only 20 bytes follow")
    (tmp_path / "max").write_bytes(b"\xff" * 16)
    refused(tmp_path / "max", "over the")


def test_garbled_header(good):
    raw = bytearray(good.read_bytes())
    raw[8] = ord("[")
    good.write_bytes(bytes(raw))
    refused(good, "not valid JSON")
    raw[8:10] = b"{\xff"
    good.write_bytes(bytes(raw))
    refused(good, "not valid JSON")


def test_every_single_byte_change_is_loaded_or_refused(good):
    # Flip each header byte in turn: the result is a ModelFileError, or a model with the very same
    # architecture and weights (a flipped letter inside a class name or a JSON space changes only meta).
    reference = load(good)
    raw = good.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    loaded = refused_count = 0
    for i in range(8 + n):
        damaged = bytearray(raw)
        damaged[i] ^= 0x41
        good.write_bytes(bytes(damaged))
        try:
            net = load(good)
        except ModelFileError:
            refused_count += 1
            continue
        loaded += 1
        assert net.sizes == reference.sizes and net.activations == reference.activations, i
        for (W, b), (W0, b0) in zip(net.get_weights(), reference.get_weights()):
            np.testing.assert_array_equal(W, W0, err_msg=f"byte {i}")
            np.testing.assert_array_equal(b, b0, err_msg=f"byte {i}")
    assert refused_count > loaded  # most of the header is structure, and damage to it is refused


def edit(path, change):
    header, data = split_file(path)
    data = change(header, data) or data
    join_file(path, header, data)


def test_wrong_shape_that_does_not_chain(good):
    def swap(header, data):
        header["W1"]["shape"] = header["W1"]["shape"][::-1]  # same bytes, (4, 5) instead of (5, 4)
    edit(good, swap)
    err = refused(good, r"W1 has shape \(4, 5\), but sizes \[4, 5, 3\] need \(5, 4\)")
    assert "(n_l, n_{l-1})" in err.message


def test_shape_that_disagrees_with_offsets(good):
    edit(good, lambda h, d: h["b1"].update(shape=[6]))
    refused(good, "b1.*needs 24 bytes but its offsets")


def test_overlapping_and_gapped_offsets(good, tmp_path):
    header, data = split_file(good)
    b1 = header["b1"]["data_offsets"]
    header["b1"]["data_offsets"] = [b1[0] - 4, b1[1] - 4]
    join_file(tmp_path / "overlap", header, data)
    refused(tmp_path / "overlap", "overlaps")
    header["b1"]["data_offsets"] = [b1[0] + 4, b1[1] + 4]
    join_file(tmp_path / "gap", header, data)
    refused(tmp_path / "gap", "gap|overlaps")
    header["b1"]["data_offsets"] = [b1[0], b1[1] + 10**12]
    join_file(tmp_path / "far", header, data)
    refused(tmp_path / "far", "needs .* bytes but its offsets")
    header["b1"]["data_offsets"] = [-4, b1[1]]
    join_file(tmp_path / "neg", header, data)
    refused(tmp_path / "neg", "data_offsets")


def test_bad_tensor_entries(good, tmp_path):
    for name, change, match in [
        ("dtype", lambda h: h["W1"].update(dtype="F128"), "unknown dtype 'F128'"),
        ("listdtype", lambda h: h["W1"].update(dtype=["F32"]), "unknown dtype"),
        ("extra", lambda h: h["W1"].update(extra=1), "exactly dtype, shape and data_offsets"),
        ("shape", lambda h: h["W1"].update(shape=[5, -4]), "whole numbers"),
        ("boolshape", lambda h: h["b1"].update(shape=[True]), "whole numbers"),
        ("meta", lambda h: h.update(__metadata__={"format": 1}), "strings to strings"),
    ]:
        header, data = split_file(good)
        change(header)
        join_file(tmp_path / name, header, data)
        refused(tmp_path / name, match)


def test_duplicate_keys_are_refused(good):
    header, data = split_file(good)
    text = json.dumps(header)
    text = text[:-1] + ', "W1": ' + json.dumps(header["W1"]) + "}"
    text = text.encode() + b" " * (-len(text) % 8)
    good.write_bytes(struct.pack("<Q", len(text)) + text + data)
    refused(good, "duplicate key")


def rewrite_meta(path, **changes):
    tensors, meta = read_tensors(path)
    meta.update(changes)
    write_tensors(path, tensors, meta)


def test_architecture_checks(good):
    tensors, meta = read_tensors(good)
    arch = json.loads(meta["architecture"])
    cases = [
        ({**arch, "activations": ["tanh", "softplus"]}, "unknown activation 'softplus'"),
        ({**arch, "loss": "hinge"}, "unknown loss 'hinge'"),
        ({**arch, "loss": "squared_error"}, "cannot be trained with squared_error"),
        ({**arch, "sizes": [4, 5]}, "sizes .* must list|activations .* one activation per layer"),
        ({**arch, "sizes": [4, 5, 0]}, "whole numbers ≥ 1"),
        ({**arch, "sizes": [4, 5, 3, 2], "activations": ["tanh", "tanh", "softmax"]}, "missing W3, b3"),
    ]
    for new_arch, match in cases:
        write_tensors(good, tensors, {**meta, "architecture": json.dumps(new_arch)})
        refused(good, match)
    write_tensors(good, {**tensors, "W9": np.zeros(1, np.float32)}, meta)
    refused(good, "unexpected W9")


def test_format_name_version_dtype(good):
    rewrite_meta(good, format_version=str(FORMAT_VERSION + 1))
    err = refused(good, f"format version {FORMAT_VERSION + 1}; this deltaprop reads up to {FORMAT_VERSION}")
    assert "upgrade" in err.hint
    rewrite_meta(good, format_version="one")
    refused(good, "not a whole number")
    rewrite_meta(good, format_version="1", format="keras")
    refused(good, "not a deltaprop model")
    rewrite_meta(good, format=FORMAT_NAME, dtype="float16")
    refused(good, "dtype 'float16'")
    rewrite_meta(good, dtype="float64")
    refused(good, "W1 is float32 in a float64 model")
    rewrite_meta(good, dtype="float32", meta="[1, 2]")
    refused(good, "meta entry must be a JSON object")
    rewrite_meta(good, meta="{not json")
    refused(good, "meta entry is not valid JSON")


def test_half_precision_model_refused(good):
    tensors, meta = read_tensors(good)
    write_tensors(good, {k: v.astype(np.float16) for k, v in tensors.items()}, meta)
    refused(good, "W1 is float16 in a float32 model")


def test_non_finite_weights_refused(good):
    tensors, meta = read_tensors(good)
    tensors["W2"][0, 0] = np.nan
    write_tensors(good, tensors, meta)
    refused(good, "W2 holds NaN")


def test_bad_stored_scaler_refused(good):
    tensors, meta = read_tensors(good)
    inner = json.loads(meta["meta"])
    inner["scaler"]["scale"][0] = -1.0
    write_tensors(good, tensors, {**meta, "meta": json.dumps(inner)})
    refused(good, "input scaling is invalid")
    inner["scaler"] = Scaler("standard").fit(np.zeros((2, 7))).to_dict()
    write_tensors(good, tensors, {**meta, "meta": json.dumps(inner)})
    refused(good, "scaling is for 7 features, the network takes 4")


def test_foreign_safetensors_file(tmp_path):
    write_tensors(tmp_path / "x", {"weight": np.zeros(2, np.float32)})
    refused(tmp_path / "x", "not a deltaprop model .no deltaprop header")


# -- atomic writes --------------------------------------------------------------------------------
def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_failed_save_leaves_the_previous_file_intact(good):
    before = good.read_bytes()
    net = make_net()
    net.meta = {"callback": object()}  # not JSON-able: fails while encoding
    with pytest.raises(ModelFileError, match="net.meta cannot be stored as JSON"):
        dp_save(net, good)
    net = make_net()
    net.layers[1].W = net.layers[1].W.astype(np.float16)  # a parameter the format refuses
    with pytest.raises(ModelFileError, match="W2 is float16 in a float32 network"):
        dp_save(net, good)
    net.layers[0].W = net.layers[0].W.astype(np.float16)
    with pytest.raises(ModelFileError, match="cannot save a float16 network"):
        dp_save(net, good)
    with pytest.raises(ModelFileError, match="complex128"):
        write_tensors(good, {"z": np.zeros(2, complex)})
    assert good.read_bytes() == before and leftovers(good.parent) == []
    assert dp.load(good).sizes == [4, 5, 3]


def test_failed_rename_removes_the_temporary_file(tmp_path):
    target = tmp_path / "model"
    target.mkdir()  # os.replace(file, directory) fails after the temporary file was written
    (target / "keep").write_text("x")
    with pytest.raises(ModelFileError, match="cannot write the model file") as err:
        dp_save(make_net(), target)
    assert "writable" in err.value.hint
    assert leftovers(tmp_path) == [] and (target / "keep").read_text() == "x"
    with pytest.raises(ModelFileError, match="cannot write"):
        dp_save(make_net(), tmp_path / "no" / "such" / "dir" / "m")


def test_save_replaces_and_respects_umask(good):
    old = os.umask(0o022)
    os.umask(old)
    net = make_net(seed=5)
    dp_save(net, good)
    assert dp.load(good).layers[0].W.tobytes() == net.layers[0].W.tobytes()
    assert good.stat().st_mode & 0o777 == 0o666 & ~old
    assert leftovers(good.parent) == []


def test_save_refuses_what_is_not_a_network_with_a_clear_error(tmp_path):
    # dp.save(clf, path) with a fitted estimator, or the arguments swapped: say what to pass, write nothing.
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5).fit(np.eye(4), [0, 1, 0, 1])
    for wrong in (clf, str(tmp_path / "m.safetensors")):
        with pytest.raises(InputTypeError, match="save needs a deltaprop Network") as err:
            dp.save(wrong, tmp_path / "m.safetensors")
        assert "from_sklearn" in err.value.hint
    assert not list(tmp_path.iterdir())
