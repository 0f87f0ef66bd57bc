"""The playground's server side: data sets, the session's steps, the JSON API (Flask's test client).

The browser tests are in test_playground_browser.py (marked slow)."""

import json
import subprocess

import numpy as np
import pytest

import deltaprop as dp

flask = pytest.importorskip("flask", reason="the playground needs Flask: pip install 'deltaprop[playground]'")

from cli_child import command, run  # noqa: E402
from deltaprop.playground import create_app  # noqa: E402
from deltaprop.playground.data import TWO_D, make_dataset  # noqa: E402
from deltaprop.playground.session import Config, Session  # noqa: E402


@pytest.mark.parametrize("name", sorted(TWO_D))
def test_two_dimensional_data_sets_are_seeded_balanced_and_in_the_square(name):
    X, y, classes = make_dataset(name, 300, seed=4)
    X2, y2, _ = make_dataset(name, 300, seed=4)
    X3, _, _ = make_dataset(name, 300, seed=5)
    assert X.shape == (300, 2) and y.shape == (300,)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, X3)
    counts = np.bincount(y, minlength=len(classes))
    assert len(counts) == len(classes) and counts.min() >= 300 // len(classes) - 30
    assert np.abs(X).max() < 1.6


def test_xor_labels_follow_the_signs_and_circles_the_radius():
    X, y, _ = make_dataset("xor", 200, seed=0, noise=0.0)
    np.testing.assert_array_equal(y, (X[:, 0] > 0) != (X[:, 1] > 0))
    X, y, _ = make_dataset("circles", 200, seed=0, noise=0.0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert r[y == 0].max() <= 0.5 and r[y == 1].min() >= 0.7


def test_unknown_data_set_and_bad_settings_are_refused_by_name():
    with pytest.raises(dp.ConfigError, match="circles"):
        make_dataset("cirlces")
    with pytest.raises(dp.ConfigError, match="learning rate"):
        Config.from_query({"lr": "0"})
    with pytest.raises(dp.ConfigError, match="hidden layer sizes"):
        Config.from_query({"network": "eight"})
    with pytest.raises(dp.ConfigError, match="setting"):
        Config.from_query({"epochs": "3"})


def test_one_step_is_one_mini_batch_of_the_engines_sgd():
    s = Session(Config.from_query({"data": "moons", "network": "5", "lr": "0.3", "batch": "8", "seed": "2"}))
    idx = s.batch_indices().copy()
    assert len(idx) == 8
    before = s.net.copy()
    _, grads = before.backprop(s.X[idx], s.y[idx])
    s.step(1)
    for layer, old, (dW, db) in zip(s.net.layers, before.layers, grads):
        np.testing.assert_allclose(layer.W, old.W - 0.3 * dW, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(layer.b, old.b - 0.3 * db, rtol=1e-12, atol=1e-15)
    assert s.steps == 1 and s.history[-1]["step"] == 1
    assert s.history[-1]["loss"] == pytest.approx(s.net.cost(s.X, s.y))


def test_an_epoch_visits_every_training_row_once():
    s = Session(Config.from_query({"data": "blobs", "batch": "32", "points": "100"}))
    seen = []
    while s.epoch == 0:
        seen.extend(s.batch_indices().tolist())
        s.step(1)
    assert sorted(seen) == list(range(len(s.X)))


def _client(**query):
    app = create_app(config=Config.from_query(query) if query else None)
    return app.test_client()


def test_api_step_advances_the_count_and_changes_the_loss():
    c = _client(data="xor", network="8,8", lr="0.3")
    first = c.get("/api/state").get_json()
    assert first["step"] == 0
    after = c.post("/api/step", json={"n": 10}).get_json()
    assert after["step"] == 10
    assert after["loss"] != first["loss"]
    assert [h["step"] for h in after["history"]] == list(range(11))
    assert after["network_svg"].startswith("<svg")


def test_api_errors_are_json_with_a_hint():
    c = _client()
    r = c.post("/api/reset", json={"optimizer": "adamw"})
    assert r.status_code == 400
    body = r.get_json()
    assert "adamw" in body["error"] and body["hint"]
    r = c.post("/api/step", json={"n": "many"})
    assert r.status_code == 400 and "whole number" in r.get_json()["error"]


def test_boundary_is_the_networks_prediction_on_the_grid():
    c = _client(data="blobs", network="4", seed="1")
    c.post("/api/step", json={"n": 30})
    b = c.get("/api/boundary").get_json()
    n = b["grid"]
    assert len(b["label"]) == n * n and set(b["label"]) <= {0, 1, 2}
    assert min(b["confidence"]) >= 1 / 3 - 1e-9
    assert len(b["train"]) + len(b["test"]) == 400


def _cli_trace(*args):
    return json.loads(run("trace", *args, "--format", "json", check=0).stdout)


def test_backprop_view_of_a_preset_is_deltaprop_trace_of_that_preset():
    c = _client(network="note001", batch="2", seed="3")
    view = c.get("/api/backprop").get_json()
    cli = _cli_trace("--preset", "note001", "--examples", "2", "--seed", "3")
    deltas = {m["layer"]: m["rows"] for s in view["stages"] for m in s["matrices"] if m["role"] == "delta"}
    expected = {b["layer"]: b["delta"] for b in cli["backward"]}
    assert deltas.keys() == expected.keys() == {1, 2, 3}
    for layer, delta in expected.items():
        assert deltas[layer] == delta  # the same float64 numbers, bit for bit
    kinds = [s["kind"] for s in view["stages"]]
    assert kinds == ["input", "forward", "forward", "forward", "cost", "output", "backward", "backward", "backward",
                     "update"]
    assert view["stages"][4]["value"] == cli["cost"]["J"]


def test_backprop_view_in_the_notes_columns_is_the_transposed_trace_with_dz():
    # Students of notes 001 and 003 see examples in columns and dZ = m δᵀ, with those notes' equations.
    c = _client(network="note001", batch="2", seed="3")
    view = c.get("/api/backprop?notation=columns").get_json()
    assert view["notation"] == "columns"
    cli = _cli_trace("--preset", "note001", "--examples", "2", "--seed", "3")
    m = cli["m"]
    dz = {mat["layer"]: mat for s in view["stages"] for mat in s["matrices"] if mat["role"] == "delta"}
    for b in cli["backward"]:
        expected = m * np.asarray(b["delta"]).T
        assert dz[b["layer"]]["tex"] == f"dZ^{{[{b['layer']}]}}" and dz[b["layer"]]["shape"] == list(expected.shape)
        np.testing.assert_allclose(dz[b["layer"]]["rows"], expected, rtol=1e-15, atol=0)
    batch = view["stages"][0]["matrices"][0]
    assert batch["shape"] == [len(cli["input"]["X"][0]), m]  # n × m: one example per column
    eq_tex = {e["tex"] for s in view["stages"] for e in s["equations"]}
    explained = {b["tex"] for b in dp.explain(dp.Network.from_sizes([3, 4, 3, 2], hidden="relu"), notation="columns")
                 .to_dict()["blocks"] if b["type"] == "equation"}
    assert eq_tex <= explained and any(t.startswith("dZ^{[3]}") for t in eq_tex)
    assert c.get("/api/backprop?notation=sideways").status_code == 400


def test_backprop_view_carries_explains_equations_and_the_finite_difference_check():
    c = _client(data="circles", network="3", l2="0.1")
    view = c.get("/api/backprop").get_json()
    eq_tex = {e["tex"] for s in view["stages"] for e in s["equations"]}
    explained = {b["tex"] for b in dp.explain(dp.Network.from_sizes([2, 3, 2], hidden="tanh"), l2=0.1)
                 .to_dict()["blocks"] if b["type"] == "equation"}
    assert eq_tex <= explained
    for s in view["stages"]:
        if s["kind"] in ("forward", "cost", "output", "backward", "update"):
            assert s["equations"], s["id"]
            assert all(e["mathml"].startswith('<math display="block">') for e in s["equations"])
    back = [s for s in view["stages"] if s["kind"] == "backward"]
    assert all(s["check"]["dW"] < 1e-6 and s["check"]["db"] < 1e-6 for s in back)
    assert view["check_ok"] is True


def test_the_page_and_its_files_are_bundled():
    c = _client()
    page = c.get("/").get_data(as_text=True)
    assert 'data-testid="step-count"' in page and 'data-testid="loss"' in page
    for name in ("Step", "Play", "Pause", "Reset"):
        assert f">{name}</button>" in page
    assert "http://" not in page and "https://" not in page
    for path in ("/static/app.js", "/static/app.css", "/static/favicon.svg", "/favicon.ico"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert b"https://" not in r.get_data(), path


def test_a_model_file_can_be_uploaded_and_becomes_the_network(tmp_path):
    net = dp.Network.from_sizes([2, 5, 2], hidden="relu", seed=9)
    path = tmp_path / "m.safetensors"
    dp.save(net, path)
    c = _client()
    r = c.post("/api/model", data=path.read_bytes())
    assert r.status_code == 200, r.get_json()
    state = r.get_json()
    assert state["sizes"] == [2, 5, 2] and state["config"]["data"] == "model"
    r = c.post("/api/model", data=b"not a model")
    assert r.status_code == 400 and r.get_json()["error"]


def test_the_command_prints_the_url_of_a_free_port_and_serves_the_page():
    import re
    import urllib.request

    proc = subprocess.Popen(command("playground", "--port", "0", "--no-browser", "--data", "xor", "--layers",
                                    "4"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert url, line + proc.stderr.read()
        assert int(url.group(1)) > 0
        with urllib.request.urlopen(url.group(0) + "api/state", timeout=30) as r:
            state = json.loads(r.read())
        assert state["data"] == "xor" and state["sizes"] == [2, 4, 2]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_command_refuses_a_missing_model_file_and_a_bad_port(tmp_path):
    r = run("playground", tmp_path / "none.safetensors", "--no-browser")
    assert r.returncode == 3 and "no model file" in r.stderr
    r = run("playground", "--port", "70000", "--no-browser")
    assert r.returncode == 2 and "--port" in r.stderr


def _unit_tips(svg: str) -> dict:
    """{(layer, unit): tooltip text} of a network picture."""
    from xml.etree import ElementTree

    ns = "{http://www.w3.org/2000/svg}"
    root = ElementTree.fromstring(svg)
    return {(int(g.get("data-layer")), int(g.get("data-unit"))): g.find(f"{ns}title").text
            for g in root.iter(f"{ns}g") if g.get("class") == "unit"}


def _shown(x: float) -> str:
    """x as the picture writes it: 4 significant digits, a true minus sign, 0 for ±0."""
    return "0" if x == 0 else f"{x:.4g}".replace("-", "−")


def test_the_columns_views_picture_names_the_error_dz_as_its_panels_do():
    # The picture beside the notes' columns said δ (deltaprop's rows) while its panels said dZ = m δᵀ.
    c = _client(network="note001", batch="2", seed="3")
    cli = _cli_trace("--preset", "note001", "--examples", "2", "--seed", "3")
    m = cli["m"]
    cols = c.get("/api/backprop?notation=columns").get_json()
    rows = c.get("/api/backprop").get_json()
    assert "δ" not in cols["picture"] and "dZ" in cols["picture"]
    assert "A[1]: 4×m" in cols["picture"] and "A[1]: m×4" in rows["picture"]
    tips_cols, tips_rows = _unit_tips(cols["picture"]), _unit_tips(rows["picture"])
    for b in cli["backward"]:
        for unit in range(len(b["delta"][0])):
            tip_c, tip_r = tips_cols[(b["layer"], unit + 1)], tips_rows[(b["layer"], unit + 1)]
            for i in range(m):
                dz, delta = "dZ = " + _shown(m * b["delta"][i][unit]), "δ = " + _shown(b["delta"][i][unit])
                assert dz in tip_c and delta in tip_r, (b["layer"], unit, i)


def test_settings_and_requests_the_server_failed_on_get_a_message_not_a_server_error():
    # ?seed=-1 and a JSON list as the body were 500 pages (a traceback in the log, a blank page in a browser),
    # test_fraction=0.99 of 10 points said 'X has no rows (shape (0, 2))'
    app = create_app()
    app.testing = False  # as the command serves it: an unexpected exception becomes a 500, not a test failure
    c = app.test_client()
    for settings, words in (({"seed": "-1"}, "seed"), ({"network": "note001", "seed": "-3"}, "seed"),
                            ({"points": "10", "test_fraction": "0.99"}, "no training rows")):
        r = c.post("/api/reset", json=settings)
        assert r.status_code == 400 and words in r.get_json()["error"] and r.get_json()["hint"], settings
    for path in ("/api/reset", "/api/step"):
        for body in (["x"], "x", 5):
            r = c.post(path, json=body)
            assert r.status_code == 400 and "JSON object" in r.get_json()["error"], (path, body)
    assert c.post("/api/step", json={"n": 2}).get_json()["step"] == 2  # the session is still there
    r = c.get("/api/nothing")
    assert r.status_code == 404 and r.get_json()["hint"]
    assert c.get("/api/model").status_code == 405 and c.get("/api/model").get_json()["error"]


def test_a_model_file_too_large_is_refused_in_words(monkeypatch):
    from deltaprop.playground import server

    monkeypatch.setattr(server, "MAX_UPLOAD", 1000)
    r = create_app().test_client().post("/api/model", data=b"x" * 2000)
    assert r.status_code == 413 and "MiB" in r.get_json()["hint"]


def test_a_failure_of_the_playground_itself_is_named_in_json(monkeypatch):
    def broken(self):
        raise RuntimeError("the grid broke")

    monkeypatch.setattr(Session, "boundary", broken)
    app = create_app()
    app.testing = False
    r = app.test_client().get("/api/boundary")
    assert r.status_code == 500 and "RuntimeError: the grid broke" in r.get_json()["error"]
