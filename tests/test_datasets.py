"""Data loading: IDX bytes as the format defines them, CSV and NPZ rules, --data specs, splits, scaling.

Every file here is written by the test itself into tmp_path; nothing depends on data sets installed
on the machine (Fashion-MNIST is exercised through a small IDX directory of the same layout).
"""

import gzip
import hashlib
import json

import numpy as np
import pytest

from deltaprop.errors import ConfigError, DataError, InputError
from deltaprop.io.datasets import (
    FASHION_MNIST_CLASSES,
    Dataset,
    encode_labels,
    file_fingerprint,
    fingerprint,
    load_csv,
    load_fashion_mnist,
    load_idx_dataset,
    load_npz,
    read_csv,
    read_idx,
    resolve,
    split,
    write_idx,
)
from deltaprop.io.preprocessing import Scaler

APT_HINT = "sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist"


# -- IDX ------------------------------------------------------------------------------------------
def test_read_idx_hand_written_bytes(tmp_path):
    # magic 00 00 08 03 (uint8, 3 dims), sizes 2, 2, 3 as big-endian uint32, then 12 bytes row-major.
    raw = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    raw += bytes(range(12))
    (tmp_path / "a-idx3-ubyte").write_bytes(raw)
    got = read_idx(tmp_path / "a-idx3-ubyte")
    assert got.dtype == np.uint8 and got.shape == (2, 2, 3)
    np.testing.assert_array_equal(got, np.arange(12).reshape(2, 2, 3))


def test_read_idx_big_endian_int32(tmp_path):
    raw = bytes([0, 0, 0x0C, 1]) + (2).to_bytes(4, "big") + (1).to_bytes(4, "big", signed=True) \
        + (-2).to_bytes(4, "big", signed=True)
    (tmp_path / "x").write_bytes(raw)
    got = read_idx(tmp_path / "x")
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, [1, -2])


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_round_trip_images_and_labels(tmp_path, name):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=5).astype(np.uint8)
    write_idx(tmp_path / name, images)
    write_idx(tmp_path / ("labels" + name[6:].replace("idx3", "idx1")), labels)
    got = read_idx(tmp_path / name)
    assert got.dtype == np.uint8 and got.shape == (5, 4, 3)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(read_idx(tmp_path / ("labels" + name[6:].replace("idx3", "idx1"))), labels)
    if name.endswith(".gz"):
        assert gzip.decompress((tmp_path / name).read_bytes())[:4] == bytes([0, 0, 8, 3])


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "float32", "float64"])
def test_idx_round_trip_other_dtypes(tmp_path, dtype):
    arr = (np.arange(24).reshape(2, 3, 4) - 7) / (3 if dtype.startswith("float") else 1)
    arr = arr.astype(dtype)
    write_idx(tmp_path / "a.gz", arr)
    got = read_idx(tmp_path / "a.gz")
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, arr)


def test_idx_write_refuses_unsupported_dtype(tmp_path):
    with pytest.raises(DataError, match="uint64"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.uint64))


def test_idx_wrong_magic(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(DataError, match=r"bad is not an IDX file: magic number 01 02 08 01"):
        read_idx(tmp_path / "bad")


def test_idx_unknown_type_code(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x07\x01" + (1).to_bytes(4, "big") + b"\x00")
    with pytest.raises(DataError, match="magic number"):
        read_idx(tmp_path / "bad")


def test_idx_gzip_without_gz_name_is_explained(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros((2, 2), np.uint8))
    (tmp_path / "a.gz").rename(tmp_path / "a")
    with pytest.raises(DataError) as err:
        read_idx(tmp_path / "a")
    assert "gzip" in err.value.hint


def test_idx_size_mismatch_and_truncation(tmp_path):
    write_idx(tmp_path / "a", np.zeros((3, 4), np.uint8))
    good = (tmp_path / "a").read_bytes()
    (tmp_path / "long").write_bytes(good + b"\x00")
    with pytest.raises(DataError, match=r"long is longer than its header says: shape \(3, 4\)"):
        read_idx(tmp_path / "long")
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(DataError, match=r"short is truncated: shape \(3, 4\) of uint8 needs 24 bytes, the file has 23"):
        read_idx(tmp_path / "short")
    (tmp_path / "cut").write_bytes(good[:6])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "cut")
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too short"):
        read_idx(tmp_path / "tiny")


def test_idx_truncated_gzip_stream(tmp_path):
    write_idx(tmp_path / "a.gz", np.arange(1000, dtype=np.int32))
    raw = (tmp_path / "a.gz").read_bytes()
    (tmp_path / "b.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="b.gz"):
        read_idx(tmp_path / "b.gz")
    (tmp_path / "c.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="c.gz"):
        read_idx(tmp_path / "c.gz")


def test_idx_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope")
    with pytest.raises(DataError, match="is a directory"):
        read_idx(tmp_path)


def write_idx_dir(directory, n_train=6, n_test=4, shape=(4, 4), gz=True, sep="-", seed=0):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    arrays = {}
    for part, m in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(m, *shape), dtype=np.uint8)
        labels = (np.arange(m) % 3).astype(np.uint8)
        write_idx(directory / f"{part}-images{sep}idx3-ubyte{suffix}", images)
        write_idx(directory / f"{part}-labels{sep}idx1-ubyte{suffix}", labels)
        arrays[part] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz,sep", [(True, "-"), (False, "-"), (False, ".")])
def test_load_idx_dataset_flattens(tmp_path, gz, sep):
    arrays = write_idx_dir(tmp_path / "d", gz=gz, sep=sep)
    X_train, y_train, X_test, y_test = load_idx_dataset(tmp_path / "d")
    assert X_train.shape == (6, 16) and X_train.dtype == np.uint8
    assert X_test.shape == (4, 16) and y_test.dtype == np.int64
    np.testing.assert_array_equal(X_train, arrays["train"][0].reshape(6, 16))
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])
    Xf = load_idx_dataset(tmp_path / "d", dtype="float32")[0]
    assert Xf.dtype == np.float32
    np.testing.assert_array_equal(Xf, X_train.astype(np.float32))


def test_load_idx_dataset_missing_files_are_listed(tmp_path):
    write_idx_dir(tmp_path / "d")
    (tmp_path / "d" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"lacks the IDX file\(s\) t10k-labels-idx1-ubyte\[\.gz\]"):
        load_idx_dataset(tmp_path / "d")
    with pytest.raises(DataError, match="no such directory"):
        load_idx_dataset(tmp_path / "nowhere")


def test_load_idx_dataset_count_mismatch(tmp_path):
    write_idx_dir(tmp_path / "d")
    write_idx(tmp_path / "d" / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="6 images but 5 labels"):
        load_idx_dataset(tmp_path / "d")


def test_fashion_mnist_missing_directory_gives_the_install_hint(tmp_path):
    with pytest.raises(DataError) as err:
        load_fashion_mnist(tmp_path / "absent")
    assert APT_HINT in err.value.hint and "fashion-mnist:DIR" in err.value.hint
    with pytest.raises(DataError) as err:
        resolve(f"fashion-mnist:{tmp_path / 'absent'}")
    assert APT_HINT in err.value.hint


def test_fashion_mnist_from_a_directory(tmp_path):
    write_idx_dir(tmp_path / "fm", shape=(28, 28))
    X_train, y_train, X_test, y_test = load_fashion_mnist(tmp_path / "fm")
    assert X_train.shape == (6, 784) and X_test.shape == (4, 784)
    ds = resolve(f"fashion-mnist:{tmp_path / 'fm'}")
    assert ds.name == "fashion-mnist" and ds.image_shape == (28, 28)
    assert ds.class_names == FASHION_MNIST_CLASSES and ds.scaling == "divide:255"
    np.testing.assert_array_equal(ds.X_train, X_train)


# -- CSV ------------------------------------------------------------------------------------------
def test_csv_with_header_and_string_labels(tmp_path):
    p = tmp_path / "iris.csv"
    p.write_text("sepal,petal,species\n1.5,2,setosa\n3,-4e-1,virginica\n 5 , 6 ,setosa\n\n")
    table = read_csv(p)
    assert table.has_header and table.feature_names == ["sepal", "petal"] and table.target_name == "species"
    np.testing.assert_array_equal(table.X, [[1.5, 2.0], [3.0, -0.4], [5.0, 6.0]])
    assert table.y.tolist() == ["setosa", "virginica", "setosa"]


def test_csv_without_header_numeric_labels(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("1,2,0\n3,4,1\n5,6,1\n")
    X, y = load_csv(p)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(y, [0, 1, 1])


def test_csv_without_header_string_labels(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("1,2,cat\n3,4,dog\n")
    table = read_csv(p)
    assert not table.has_header and table.y.tolist() == ["cat", "dog"]


@pytest.mark.parametrize("target", ["label", 0, -3, "0"])
def test_csv_target_by_name_or_index(tmp_path, target):
    p = tmp_path / "a.csv"
    p.write_text("label,x1,x2\nb,1,2\na,3,4\n")
    X, y = load_csv(p, target=target)
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    assert y.tolist() == ["b", "a"]


def test_csv_bad_cell_names_row_and_column(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("x1,x2,y\n1,2,0\n3,oops,1\n")
    with pytest.raises(DataError) as err:
        load_csv(p)
    assert "row 2 (line 3), column 'x2' (2nd): 'oops' is not a number" in err.value.message
    p.write_text("1,2,0\n,4,1\n")
    with pytest.raises(DataError, match=r"row 2 \(line 2\), column 0 \(1st\): '' is empty"):
        load_csv(p)
    p.write_text("x,y\n1,0\nnan,1\n")
    with pytest.raises(DataError, match="'nan' is not finite"):
        load_csv(p)


def test_csv_missing_target_lists_columns(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("x1,x2,y\n1,2,0\n")
    with pytest.raises(DataError) as err:
        load_csv(p, target="label")
    assert "no column 'label'" in err.value.message
    assert "0: 'x1', 1: 'x2', 2: 'y'" in err.value.hint
    with pytest.raises(DataError, match="no column 7"):
        load_csv(p, target=7)


def test_csv_malformed_files(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_csv(p)
    p.write_text("x,y\n")
    with pytest.raises(DataError, match="no rows"):
        load_csv(p)
    p.write_text("x,y\n1,2\n3\n")
    with pytest.raises(DataError, match="line 3: 1 cells"):
        load_csv(p)
    p.write_text("x,x,y\n1,2,3\n")
    with pytest.raises(DataError, match="repeats the column name"):
        load_csv(p)
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8"):
        load_csv(p)
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "absent.csv")


# -- NPZ ------------------------------------------------------------------------------------------
def test_npz_round_trip_and_errors(tmp_path):
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 0, 1])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    arrays = load_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(arrays["X"], X)
    np.savez(tmp_path / "bad.npz", features=X, y=y)
    with pytest.raises(DataError, match="no array.* X; it holds features, y"):
        load_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}], dtype=object), y=y)
    with pytest.raises(DataError, match="unpickling"):
        load_npz(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="junk.npz is not a readable .npz"):
        load_npz(tmp_path / "junk.npz")
    np.savez(tmp_path / "len.npz", X=X, y=y[:5])
    with pytest.raises(DataError, match="y has shape"):
        load_npz(tmp_path / "len.npz")


def test_resolve_npz_uses_given_test_split_and_class_names(tmp_path):
    X = np.arange(20.0).reshape(10, 2)
    np.savez(tmp_path / "d.npz", X=X[:6], y=np.array(["a", "b"] * 3), X_test=X[6:], y_test=np.array(["b", "a"] * 2),
             class_names=np.array(["b", "a"]))
    ds = resolve(str(tmp_path / "d.npz"))
    assert ds.class_names == ["b", "a"]
    np.testing.assert_array_equal(ds.y_train, [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(ds.X_test, X[6:])


# -- resolve and splits ---------------------------------------------------------------------------
def test_resolve_csv_splits_per_class(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [f"{rng.normal():.4f},{rng.normal():.4f},{'yes' if i % 4 else 'no'}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(rows))
    ds = resolve(tmp_path / "t.csv", seed=3)
    assert isinstance(ds, Dataset) and ds.name == "t" and ds.class_names == ["no", "yes"]
    assert ds.feature_names == ["a", "b"] and ds.task == "classification"
    assert ds.X_train.shape == (28, 2) and ds.X_test.shape == (12, 2)
    assert np.bincount(ds.y_test).tolist() == [3, 9]  # 30% of 10 "no" and of 30 "yes"
    again = resolve(tmp_path / "t.csv", seed=3)
    np.testing.assert_array_equal(again.X_test, ds.X_test)
    assert not np.array_equal(resolve(tmp_path / "t.csv", seed=4).X_test, ds.X_test)


def test_resolve_csv_regression(tmp_path):
    (tmp_path / "r.csv").write_text("x,y\n" + "\n".join(f"{i},{i * 0.5 + 0.25}" for i in range(10)))
    ds = resolve(str(tmp_path / "r.csv"))
    assert ds.class_names is None and ds.task == "regression" and ds.y_train.dtype == np.float64
    assert ds.X_train.shape[0] + ds.X_test.shape[0] == 10


def test_resolve_digits():
    pytest.importorskip("sklearn")
    ds = resolve("digits")
    assert ds.X_train.shape[1] == 64 and ds.image_shape == (8, 8) and len(ds.class_names) == 10
    assert ds.X_train.shape[0] + ds.X_test.shape[0] == 1797
    assert abs(ds.X_test.shape[0] - 0.3 * 1797) < 10
    # stratified: each digit's share of the test split matches its share of the data
    assert np.all(np.abs(np.bincount(ds.y_test) / len(ds.y_test) - 0.1) < 0.02)


@pytest.mark.parametrize("prefix", ["mnist", "idx"])
def test_resolve_idx_directories(tmp_path, prefix):
    write_idx_dir(tmp_path / "m")
    ds = resolve(f"{prefix}:{tmp_path / 'm'}")
    assert ds.X_train.shape == (6, 16) and ds.image_shape == (4, 4) and ds.class_names == ["0", "1", "2"]
    with pytest.raises(DataError, match=f"{prefix} needs a directory"):
        resolve(prefix)


def test_resolve_unknown_spec_lists_the_forms():
    with pytest.raises(DataError) as err:
        resolve("cifar10")
    assert "unknown data spec 'cifar10'" in err.value.message
    for form in ("digits", "fashion-mnist:DIR", "mnist:DIR", "PATH.csv", "PATH.npz"):
        assert form in err.value.hint


def test_split_is_seeded_and_covers_every_row():
    X = np.arange(50).reshape(25, 2)
    y = np.arange(25) % 2
    a = split(X, y, 0.3, seed=1)
    b = split(X, y, 0.3, seed=1)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert sorted(np.concatenate([a[0][:, 0], a[2][:, 0]]).tolist()) == X[:, 0].tolist()
    with pytest.raises(DataError, match="too few"):
        split(X[:1], y[:1], 0.3)


def test_encode_labels():
    assert encode_labels(np.array(["b", "a", "b"]))[0].tolist() == [1, 0, 1]
    y, names = encode_labels(np.array([3.0, 7.0, 3.0]))
    assert y.tolist() == [0, 1, 0] and names == ["3", "7"]
    y, names = encode_labels(np.array([0.5, 1.5]))
    assert names is None and y.dtype == np.float64
    y, names = encode_labels(np.array([0.5, 1.5]), task="classification")
    assert names == ["0.5", "1.5"]
    with pytest.raises(DataError, match="not among the class names"):
        encode_labels(np.array(["a", "z"]), class_names=["a", "b"])
    with pytest.raises(DataError, match="numeric targets"):
        encode_labels(np.array(["a"]), task="regression")


# -- scaling --------------------------------------------------------------------------------------
def test_standard_scaler_guards_constant_columns():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    s = Scaler("standard").fit(X)
    Z = s.transform(X)
    np.testing.assert_allclose(Z[:, 0], [-np.sqrt(1.5), 0, np.sqrt(1.5)])
    np.testing.assert_array_equal(Z[:, 1], 0.0)


def test_minmax_and_divide():
    X = np.array([[0, 10], [255, 20]], dtype=np.uint8)
    Z = Scaler("minmax").fit_transform(X)
    np.testing.assert_array_equal(Z, [[0, 0], [1, 1]])
    assert Z.dtype == np.float32  # uint8 pixels become float32, not float64
    P = Scaler.from_spec("divide:255").transform(X)
    np.testing.assert_allclose(P, X / np.float32(255))
    assert Scaler.from_spec("divide").by == 255.0
    assert Scaler.from_spec("none").transform(X.astype(np.float64)).dtype == np.float64


def test_scaler_json_round_trip_is_exact():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4)) * [1, 10, 1e-3, 1e5]
    for kind in ("standard", "minmax", "divide", "none"):
        s = Scaler(kind).fit(X)
        t = Scaler.from_dict(json.loads(json.dumps(s.to_dict())))
        assert t.kind == s.kind and t.n_features == 4
        np.testing.assert_array_equal(t.transform(X), s.transform(X))


def test_scaler_errors():
    with pytest.raises(ConfigError, match="unknown scaling 'zscore'"):
        Scaler("zscore")
    with pytest.raises(ConfigError, match="not been fitted"):
        Scaler("standard").transform(np.zeros((2, 2)))
    s = Scaler("standard").fit(np.zeros((3, 2)))
    with pytest.raises(InputError, match="fitted on 2"):
        s.transform(np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="'scale' must be a list of 2 finite numbers"):
        Scaler.from_dict({"kind": "standard", "n_features": 2, "shift": [0, 0], "scale": [1]})
    with pytest.raises(ConfigError, match="> 0"):
        Scaler.from_dict({"kind": "minmax", "n_features": 1, "shift": [0], "scale": [0]})
    with pytest.raises(ConfigError):
        Scaler.from_spec("divide:zero")
    with pytest.raises(ConfigError):
        Scaler("divide", -1)


def test_scaler_from_dict_refuses_odd_numbers():
    for bad in ([10**400], [True], ["1"], [None]):
        with pytest.raises(ConfigError):
            Scaler.from_dict({"kind": "standard", "n_features": 1, "shift": [0], "scale": bad})
    with pytest.raises(ConfigError):
        Scaler.from_dict({"kind": "divide", "by": 10**400})
    with pytest.raises(ConfigError):
        Scaler.from_dict({"kind": ["standard"]})


def test_npy_that_is_an_npz_and_a_home_relative_idx_directory(tmp_path, monkeypatch):
    from deltaprop.io.datasets import load_inputs, resolve, write_idx

    np.savez(tmp_path / "arrays.npz", X=np.zeros((2, 3)))
    (tmp_path / "wrong.npy").write_bytes((tmp_path / "arrays.npz").read_bytes())
    with pytest.raises(DataError, match="npz archive"):
        load_inputs(tmp_path / "wrong.npy")
    np.save(tmp_path / "single.npy", np.zeros((2, 3)))
    (tmp_path / "single.npz").write_bytes((tmp_path / "single.npy").read_bytes())
    with pytest.raises(DataError, match="single array"):
        load_inputs(tmp_path / "single.npz")
    # mnist:~/DIR: the shell leaves ~ after "mnist:" alone; deltaprop expands it.
    monkeypatch.setenv("HOME", str(tmp_path))
    d = tmp_path / "mnist"
    d.mkdir()
    rng = np.random.default_rng(0)
    for part, n in (("train", 12), ("t10k", 6)):
        write_idx(d / f"{part}-images-idx3-ubyte", rng.integers(0, 255, size=(n, 4, 4)).astype(np.uint8))
        write_idx(d / f"{part}-labels-idx1-ubyte", (np.arange(n) % 3).astype(np.uint8))
    data = resolve("mnist:~/mnist")
    assert data.X_train.shape == (12, 16) and data.X_test.shape == (6, 16)


def test_the_two_records_of_a_data_file_keep_their_rules(tmp_path):
    """Model files, run directories and checkpoints store both records, so both rules are fixed: the
    ``source`` hashes a file's bytes alone (a moved file is recognised), the ``fingerprint`` of a spec
    hashes each file's name and bytes (a directory of IDX files with a file renamed is other data).
    Recomputed here with hashlib from the bytes the test wrote."""
    body = b"a,b,label\n1,2,x\n3,4,y\n"
    csv_path = tmp_path / "t.csv"
    csv_path.write_bytes(body)
    source = file_fingerprint(csv_path)
    assert source == {"path": str(csv_path.resolve()), "size": len(body),
                      "sha256": hashlib.sha256(body).hexdigest()}
    assert fingerprint(str(csv_path)) == {"bytes": len(body),
                                          "sha256": hashlib.sha256(b"t.csv\0" + body).hexdigest()}
    # Moved and renamed: the source's hash stays, the spec's fingerprint does not.
    moved = tmp_path / "elsewhere.csv"
    csv_path.rename(moved)
    assert file_fingerprint(moved)["sha256"] == source["sha256"]
    assert fingerprint(str(moved))["sha256"] != hashlib.sha256(b"t.csv\0" + body).hexdigest()
    # A directory: its regular files in name order, each name before its bytes.
    d = tmp_path / "idx"
    d.mkdir()
    (d / "b-labels").write_bytes(b"\x01\x02")
    (d / "a-images").write_bytes(b"\x00\x00\x08\x01")
    (d / "sub").mkdir()
    expected = hashlib.sha256(b"a-images\0\x00\x00\x08\x01" + b"b-labels\0\x01\x02").hexdigest()
    assert fingerprint(f"mnist:{d}") == {"bytes": 6, "sha256": expected}
    assert fingerprint("digits") is None and fingerprint("fashion-mnist") is None
