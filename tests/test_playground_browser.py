"""The playground in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium).

Marked slow; `.ci/run` installs Chromium and runs them. Each test starts the server on a free port in
this process and fails on any console error of the page."""

import contextlib
import json
import os
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.slow

flask = pytest.importorskip("flask", reason="the playground needs Flask: pip install 'deltaprop[playground]'")
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra has it)")

from browser import CHROMIUM, launch  # noqa: E402

if not os.path.exists(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", allow_module_level=True)

from cli_child import run  # noqa: E402
from deltaprop.playground import make_server  # noqa: E402


@pytest.fixture(scope="module")
def server():
    srv = make_server(0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}/"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems = []
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    outside = []
    pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server) else None)
    pg.problems = problems
    yield pg
    pg.close()
    assert problems == [], f"console errors: {problems}"
    assert outside == [], f"the page fetched from elsewhere: {outside}"


def _open(page, server, query=""):
    page.goto(server + query)
    page.wait_for_selector("[data-testid=delta]", state="attached", timeout=30000)


def _count(page) -> int:
    return int(page.get_by_test_id("step-count").inner_text())


@contextlib.contextmanager
def _opened(browser, url, width=1280, height=800):
    """A page of its own size at ``url``, closed afterwards (the tests that need no console check)."""
    pg = browser.new_page(viewport={"width": width, "height": height})
    try:
        pg.goto(url)
        yield pg
    finally:
        pg.close()


def _not_blank(path):
    from PIL import Image

    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert img.shape[0] > 50 and img.shape[1] > 50
    assert img.std() > 10, f"{path} looks blank (pixel standard deviation {img.std():.1f})"


def test_step_ten_times_advances_the_count_by_ten_and_changes_the_loss(page, server):
    _open(page, server, "?data=xor&network=8,8&lr=0.3&seed=1")
    start, loss = _count(page), page.get_by_test_id("loss").get_attribute("data-value")
    step = page.get_by_role("button", name="Step", exact=True)
    for _ in range(10):
        step.click()
    page.wait_for_function(f"document.querySelector('[data-testid=step-count]').textContent === '{start + 10}'")
    assert _count(page) == start + 10
    assert page.get_by_test_id("loss").get_attribute("data-value") != loss
    assert "step=" not in page.url and "seed=1" in page.url  # the URL keeps the settings, not the progress


def test_play_advances_until_pause(page, server):
    _open(page, server, "?data=moons&network=4&seed=2")
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_function("Number(document.querySelector('[data-testid=step-count]').textContent) >= 5",
                           timeout=30000)
    page.get_by_role("button", name="Pause", exact=True).click()
    page.wait_for_function("!document.getElementById('play').disabled")
    page.wait_for_timeout(500)  # a step in flight when Pause was pressed lands in this time
    stopped = _count(page)
    assert stopped >= 5
    page.wait_for_timeout(1000)
    assert _count(page) == stopped


def test_the_backprop_views_deltas_are_deltaprop_traces(page, server):
    _open(page, server, "?network=note001&seed=0&batch=2")
    cells = page.locator("[data-testid=delta]").evaluate_all(
        "els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.row), Number(e.dataset.col), e.dataset.value])")
    out = run("trace", "--preset", "note001", "--examples", "2", "--seed", "0", "--format", "json", check=0)
    expected = {b["layer"]: b["delta"] for b in json.loads(out.stdout)["backward"]}
    assert len(cells) == sum(np.size(d) for d in expected.values()) == 2 * (4 + 3 + 2)
    for layer, row, col, value in cells:
        assert float(value) == expected[layer][row - 1][col - 1]
    # The text beside each value is that value rounded.
    shown = page.locator("[data-testid=delta]").first
    assert float(shown.inner_text().replace("−", "-")) == pytest.approx(float(shown.get_attribute("data-value")),
                                                                         rel=1e-3)


def test_the_backprop_view_switches_to_the_notes_columns(page, server, tmp_path):
    # ?notation=columns (or the select) shows examples in columns and dZ = m δᵀ, as notes 001 and 003 write it.
    _open(page, server, "?network=note001&seed=0&batch=2&notation=columns")
    assert page.locator("#bp-notation").input_value() == "columns"
    out = run("trace", "--preset", "note001", "--examples", "2", "--seed", "0", "--format", "json", check=0)
    expected = {b["layer"]: 2 * np.asarray(b["delta"]).T for b in json.loads(out.stdout)["backward"]}

    def cells():
        return page.locator("[data-testid=delta]").evaluate_all(
            "els => els.map(e => [Number(e.dataset.layer), Number(e.dataset.row), Number(e.dataset.col), "
            "Number(e.dataset.value)])")

    found = cells()
    assert len(found) == 2 * (4 + 3 + 2)
    for layer, row, col, value in found:
        assert value == pytest.approx(expected[layer][row - 1][col - 1], rel=1e-12, abs=1e-300)
    page.get_by_role("tab").nth(5).click()  # the output error: dZ[3] = A[3] − Y, typeset
    panel = page.locator("#bp-stages .stage:not([hidden])")
    assert "dZ" in panel.inner_text() and panel.locator("math").count() >= 1
    panel.screenshot(path=str(tmp_path / "columns.png"))
    _not_blank(tmp_path / "columns.png")
    page.select_option("#bp-notation", "bracket")  # back to deltaprop's rows: δ, m × n
    page.wait_for_function("document.querySelector('#bp-stages .stage:not([hidden])').innerText.includes('δ')")
    assert "notation" not in page.url
    rows = {b["layer"]: b["delta"] for b in json.loads(out.stdout)["backward"]}
    for layer, row, col, value in cells():
        assert value == rows[layer][row - 1][col - 1]


def test_every_view_is_drawn(page, server, tmp_path):
    _open(page, server, "?data=spiral&network=8,8&activation=tanh&seed=0")
    step = page.get_by_role("button", name="Step", exact=True)
    for _ in range(3):
        step.click()
    page.wait_for_function("document.querySelector('[data-testid=step-count]').textContent === '3'")
    page.wait_for_timeout(500)
    for view in ("network", "boundary", "curves", "backprop"):
        path = tmp_path / f"{view}.png"
        page.locator(f"#view-{view}").screenshot(path=str(path))
        _not_blank(path)
    # Each stage of the backprop view shows its equations as typeset MathML, not LaTeX source.
    tabs = page.get_by_role("tab")
    for k in range(tabs.count()):
        tabs.nth(k).click()
        panel = page.locator("#bp-stages .stage:not([hidden])")
        text = panel.inner_text()
        assert "\\frac" not in text and "$" not in text and "\\delta" not in text
        if k > 0:
            assert panel.locator("math").count() >= 1
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    _not_blank(tmp_path / "page.png")


def test_a_bad_setting_in_the_url_is_shown_not_thrown(page, server):
    page.goto(server + "?optimizer=adamw")
    alert = page.get_by_role("alert")
    alert.wait_for(timeout=20000)
    assert "adamw" in alert.inner_text()
    # The refusal itself (status 400) is the one console message expected here.
    page.problems[:] = [p for p in page.problems if "status of 400" not in p]


def test_a_refused_setting_from_the_url_stays_in_the_form_beside_its_error(browser, server):
    # ?network=-8 showed the error about '-8' above a form that said 6,4 (the defaults)
    with _opened(browser, server + "?data=xor&network=-8&seed=3", 1400, height=1000) as pg:
        pg.wait_for_selector("#error:not([hidden])", timeout=30000)
        assert "'-8'" in pg.locator("#error").inner_text()
        assert pg.locator("#settings [name=network]").input_value() == "-8"
        assert pg.locator("#settings [name=data]").input_value() == "xor"
        assert pg.locator("#settings [name=seed]").input_value() == "3"


def test_a_setting_the_server_could_not_use_is_shown_not_a_blank_page(browser, server):
    # ?seed=-1 was a 500 from the server: the page stayed blank with only a console error
    with _opened(browser, server + "?data=xor&seed=-1") as pg:
        pg.wait_for_selector("#error:not([hidden])", timeout=30000)
        assert "seed" in pg.locator("#error").inner_text()
        assert pg.locator("#settings [name=seed]").input_value() == "-1"


def test_a_preset_shows_its_own_data_and_activation_and_gives_them_back(browser, server):
    # With network=note001 the Data and Activation selects said 'xor' and 'tanh' beside the note's ReLU
    # network on its own data, and changing them did nothing.
    with _opened(browser, server + "?data=xor&network=note001&batch=2") as pg:
        pg.wait_for_selector("[data-testid=delta]", state="attached", timeout=30000)
        data, activation = pg.locator("#settings [name=data]"), pg.locator("#settings [name=activation]")
        assert data.is_disabled() and activation.is_disabled()
        assert data.evaluate("el => el.selectedOptions[0].text") == "note001's data"
        assert activation.evaluate("el => el.selectedOptions[0].text") == "relu"
        assert "data=xor" in pg.url and "activation=tanh" in pg.url  # the session's choices, kept underneath
        pg.fill("#settings [name=network]", "5")
        pg.press("#settings [name=network]", "Enter")
        pg.wait_for_function("document.getElementById('network-caption').textContent.startsWith('2-5-2 ')")
        assert data.is_enabled() and data.input_value() == "xor"
        assert activation.is_enabled() and activation.input_value() == "tanh"
        assert pg.locator("#error").is_hidden()


@pytest.mark.parametrize("width", [1280, 800])
def test_a_wide_matrix_shows_whole_columns_within_its_panel(browser, server, width):
    # digits' dW (16×64, 12 columns sent) ran past the panel: half a number at the edge and no closing bracket
    with _opened(browser, server + "?data=digits&network=16&notation=columns", width) as pg:
        pg.wait_for_selector("[data-testid=delta]", state="attached", timeout=30000)
        for name in ("Backward 1", "Batch", "Forward 1"):
            pg.get_by_role("tab", name=name).click()
            boxes = pg.locator("#bp-stages .stage:not([hidden]) .matrix")
            sizes = boxes.evaluate_all("els => els.map(e => [e.scrollWidth, e.clientWidth, e.innerText])")
            assert sizes, name
            for scroll, client, text in sizes:
                assert scroll <= client + 1, (name, text[:40])
        notes = pg.locator("#bp-stages .stage:not([hidden]) .matrix .more").all_inner_texts()
        assert any(" of 64 columns" in n for n in notes)
        first = pg.locator("#bp-stages .stage:not([hidden]) .matrix table").first
        narrow = first.evaluate("t => t.rows[0].cells.length")
        if width > 1000:
            return  # the panel is wide enough for the 12 columns sent
        assert narrow < 12
        pg.set_viewport_size({"width": 1600, "height": 800})  # wider: the columns left out come back
        pg.wait_for_function(f"document.querySelector('#bp-stages .stage:not([hidden]) .matrix table')"
                             f".rows[0].cells.length > {narrow}")


def test_the_loss_chart_shows_the_losses_before_the_first_step(browser, server):
    # At step 0 the chart was empty (one point drawn as a line of no length) and its axis said 'step 1'
    with _opened(browser, server + "?data=moons&seed=4") as pg:
        pg.wait_for_selector("[data-testid=delta]", state="attached", timeout=30000)
        orange = pg.evaluate("""() => {
            const c = document.getElementById('curves');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let k = 0; k < d.length; k += 4) {
                if (d[k] > 200 && d[k + 1] > 90 && d[k + 1] < 140 && d[k + 2] < 60) n++;
            }
            return n;
        }""")
        assert orange >= 10  # the test loss's dot, in the test curve's orange


@pytest.mark.parametrize("width", [1280, 1024])
def test_the_backprop_pictures_values_are_drawn_large_enough_to_read(browser, server, width):
    # Beside the stage the picture was drawn at 0.64 (1280 px) and 0.5 (1024 px) of its size: its z, a and δ
    # came out as 5-7 px text
    with _opened(browser, server + "?data=spiral&network=8,8", width) as pg:
        pg.wait_for_selector("[data-testid=delta]", state="attached", timeout=30000)
        font = pg.evaluate("""() => {
            const svg = document.querySelector('#bp-picture svg');
            const text = [...svg.querySelectorAll('text')].find((t) => t.textContent.startsWith('δ '));
            return text.getBoundingClientRect().height;
        }""")
        assert font >= 9, f"the picture's values are {font:.1f} px tall"
        # The stage buttons stay in view while the numbers below the picture are read.
        pg.get_by_role("tab", name="Backward 2").click()
        pg.locator("#bp-stages .stage:not([hidden]) .matrix").last.scroll_into_view_if_needed()
        top = pg.locator(".stage-nav").evaluate("e => e.getBoundingClientRect().top")
        assert 0 <= top < 800
        pg.get_by_role("tab", name="Backward 1").click()
        assert pg.locator("#bp-stages .stage:not([hidden]) h3").inner_text() == "Backward: layer 1"
