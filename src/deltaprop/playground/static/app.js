// The playground page: it draws what the deltaprop server computes and computes nothing itself.
"use strict";

const SETTINGS = ["data", "network", "activation", "optimizer", "lr", "batch", "l2", "seed"];
const CLASS_COLOURS = [[224, 115, 28], [31, 111, 180], [46, 150, 80], [150, 80, 170], [200, 60, 80],
  [90, 90, 90], [170, 140, 20], [20, 150, 160], [120, 70, 30], [60, 60, 160]];
const $ = (id) => document.getElementById(id);
const form = $("settings");
let playing = false;
let busy = Promise.resolve();
let stageIndex = 0;
let lastState = null;

// One request at a time, in order: a Step never overtakes a Reset.
function queue(task) {
  busy = busy.then(task, task);
  return busy;
}

// The server's answer, or {error, hint} said in words: a page that cannot be read as JSON (a proxy's, an old
// server's) or no answer at all (the server stopped) is shown, never a blank page and a console error.
async function request(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    return {ok: false, data: {error: "no answer from the playground's server",
      hint: "is deltaprop playground still running? Start it again and reload this page"}};
  }
  try {
    return {ok: response.ok, data: await response.json()};
  } catch (err) {
    return {ok: false, data: {error: "the server answered " + response.status + " " + response.statusText
      + " without a message", hint: ""}};
  }
}

async function api(path, body, options) {
  options = options || (body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const {ok, data} = await request(path, options);
  if (!ok) {
    showError(data.error + (data.hint ? " — " + data.hint : ""));
    throw new Error(data.error);
  }
  showError("");
  return data;
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

function fmt(x) {
  if (x === 0) return "0";
  const s = String(Number(x.toPrecision(4)));
  return s.replace("-", "−");
}

function settingsFromForm() {
  const out = {};
  for (const name of SETTINGS) {
    const el = form.elements[name];
    // A choice a preset made for itself keeps the session's own value underneath (for when the preset goes).
    out[name] = el.disabled && lastState ? lastState.config[name] : el.value;
  }
  return out;
}

// A preset of the notes brings its own data and activations: those two selects said 'circles' and 'tanh'
// beside a network of ReLU units on the note's data, and changing them did nothing. They show what the
// preset uses, greyed, until hidden layer sizes replace the preset.
const PRESET_OWNS = {data: (state) => state.preset + "'s data", activation: (state) => state.activations[0]};

function markPreset(state) {
  for (const [name, shown] of Object.entries(PRESET_OWNS)) {
    const el = form.elements[name];
    el.querySelectorAll("option.preset").forEach((o) => o.remove());
    el.disabled = Boolean(state.preset);
    const what = name === "data" ? "a data set" : "an activation";
    el.title = state.preset ? state.preset + " sets the " + name + " itself: write hidden layer sizes such "
      + "as 6,4 to choose " + what : "";
    if (state.preset) {
      const option = new Option(shown(state), "", true, true);
      option.className = "preset";
      el.add(option);
    } else {
      el.value = String(state.config[name]);
    }
  }
}

function setFormFrom(config) {
  for (const name of SETTINGS) {
    const el = form.elements[name];
    if (!(name in config)) continue;
    const value = String(config[name]);
    const listed = (o) => o.value === value && !o.classList.contains("preset");
    if (el.tagName === "SELECT" && ![...el.options].some(listed)) {
      el.add(new Option(value, value));
    }
    el.value = value;
  }
  $("model-label").hidden = form.elements.data.value !== "model";
}

function writeUrl(config) {
  const params = new URLSearchParams();
  for (const name of SETTINGS) params.set(name, config[name]);
  if ($("bp-notation").value !== "bracket") params.set("notation", $("bp-notation").value);
  history.replaceState(null, "", "?" + params.toString());
}

// -- training state ---------------------------------------------------------------------------------
function renderState(state) {
  lastState = state;
  setFormFrom(state.config);
  markPreset(state);
  writeUrl(state.config);
  $("step-count").textContent = state.step;
  $("epoch").textContent = state.epoch;
  const loss = $("loss");
  loss.textContent = fmt(state.loss);
  loss.dataset.value = String(state.loss);
  $("test-loss").textContent = fmt(state.test_loss);
  $("accuracy").textContent = (100 * state.accuracy).toFixed(1) + "% / " + (100 * state.test_accuracy).toFixed(1) + "%";
  $("network").innerHTML = state.network_svg;
  $("network-caption").textContent = state.sizes.join("-") + " network, " + state.activations.slice(0, -1).concat(["output " + state.activations.at(-1)]).join(", ")
    + "; " + state.n_params + " parameters; " + state.n_train + " training and " + state.n_test + " test examples of " + state.data + ".";
  const about = $("about");
  about.textContent = state.about ? state.about.charAt(0).toUpperCase() + state.about.slice(1) + "." : "";
  about.hidden = !state.about;
  $("view-boundary").hidden = !state.two_d;
  drawCurves(state.history);
}

function drawCurves(history) {
  const canvas = $("curves");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, left = 40, right = 10, top = 10, bottom = 26;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  const steps = history.map((h) => h.step);
  const values = history.flatMap((h) => [h.loss, h.test_loss]).filter(Number.isFinite);
  const xmax = Math.max(1, steps.at(-1));
  const ymax = Math.max(...values, 1e-9) * 1.05;
  const x = (s) => left + (W - left - right) * s / xmax;
  const y = (v) => top + (H - top - bottom) * (1 - v / ymax);
  ctx.strokeStyle = "#dde2e8";
  ctx.fillStyle = "#5b6673";
  ctx.font = "11px DejaVu Sans, sans-serif";
  ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k++) {
    const v = ymax * k / 4;
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(W - right, y(v)); ctx.stroke();
    ctx.fillText(v.toFixed(2), 4, y(v) + 4);
  }
  ctx.textAlign = "right";
  ctx.fillText("step " + steps.at(-1), W - right, H - 8);  // it said 'step 1' before the first Step
  ctx.textAlign = "left";
  ctx.fillText("0", left, H - 8);
  const line = (key, colour, dash) => {
    ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 2; ctx.setLineDash(dash);
    if (history.length === 1) {  // one point is no line: a dot, so the losses before training show
      ctx.setLineDash([]);
      ctx.beginPath(); ctx.arc(x(history[0].step), y(history[0][key]), 3.5, 0, 2 * Math.PI); ctx.fill();
      return;
    }
    ctx.beginPath();
    history.forEach((h, i) => { if (i === 0) ctx.moveTo(x(h.step), y(h[key])); else ctx.lineTo(x(h.step), y(h[key])); });
    ctx.stroke();
    ctx.setLineDash([]);
  };
  line("test_loss", "#e0731c", [5, 4]);
  line("loss", "#1d2733", []);
}

async function drawBoundary() {
  if (!lastState || !lastState.two_d) return;
  const b = await api("/api/boundary");
  if (!b.two_d) return;
  const canvas = $("boundary");
  const ctx = canvas.getContext("2d");
  const n = b.grid, K = b.n_classes;
  const image = ctx.createImageData(n, n);
  for (let k = 0; k < n * n; k++) {
    const c = CLASS_COLOURS[b.label[k] % CLASS_COLOURS.length];
    const sure = Math.max(0, (b.confidence[k] - 1 / K) / (1 - 1 / K));
    const t = 0.12 + 0.55 * sure;
    image.data.set([255 - (255 - c[0]) * t, 255 - (255 - c[1]) * t, 255 - (255 - c[2]) * t, 255], 4 * k);
  }
  const small = document.createElement("canvas");
  small.width = n; small.height = n;
  small.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
  const px = (p) => [(p[0] - b.x[0]) / (b.x[1] - b.x[0]) * canvas.width, (b.y[1] - p[1]) / (b.y[1] - b.y[0]) * canvas.height];
  const dots = (points, labels, test) => {
    points.forEach((p, i) => {
      const [u, v] = px(p);
      const c = CLASS_COLOURS[labels[i] % CLASS_COLOURS.length];
      ctx.beginPath(); ctx.arc(u, v, test ? 3.6 : 3.2, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`;
      ctx.fill();
      ctx.lineWidth = test ? 1.6 : 1;
      ctx.strokeStyle = test ? "#111" : "#fff";
      ctx.stroke();
    });
  };
  dots(b.train, b.train_y, false);
  dots(b.test, b.test_y, true);
}

// -- the backprop view ------------------------------------------------------------------------------
function matrixElement(m) {
  const box = document.createElement("div");
  box.className = "matrix " + (m.role || "");
  const name = document.createElement("div");
  name.className = "name";
  name.innerHTML = m.name;
  const shape = document.createElement("span");
  shape.className = "shape";
  shape.textContent = "(" + m.shape.join("×") + ")";
  name.appendChild(shape);
  box.appendChild(name);
  box.matrix = m;
  fillMatrix(box, m.rows.length ? m.rows[0].length : 0);
  return box;
}

// The table of the first `columns` columns of the box's matrix, and the note of what is left out.
function fillMatrix(box, columns) {
  const m = box.matrix;
  box.querySelectorAll("table, .more").forEach((el) => el.remove());
  const table = document.createElement("table");
  m.rows.forEach((row, i) => {
    const tr = table.insertRow();
    row.slice(0, columns).forEach((v, j) => {
      const td = tr.insertCell();
      td.textContent = fmt(v);
      td.dataset.value = String(v);
      if (v < 0) td.classList.add("neg");
      if (m.role === "delta") {
        td.dataset.testid = "delta";
        td.setAttribute("data-testid", "delta");
        td.dataset.layer = m.layer;
        td.dataset.row = i + 1;
        td.dataset.col = j + 1;
      }
    });
  });
  box.appendChild(table);
  const shownCols = Math.min(columns, m.rows.length ? m.rows[0].length : 0);
  const allCols = m.shape.at(-1);
  const notes = [];
  if (m.shape.length === 2 && m.rows.length < m.shape[0]) notes.push("first " + m.rows.length + " of " + m.shape[0] + " rows");
  if (shownCols < allCols) notes.push("first " + shownCols + " of " + allCols + " columns");
  if (notes.length) {
    const more = document.createElement("div");
    more.className = "more";
    more.textContent = notes.join(", ");
    box.appendChild(more);
  }
}

// A matrix wider than the panel was cut off at its edge (digits' dW showed half a number and no bracket):
// it shows as many whole columns as fit, and says how many there are.
function fitMatrices(panel) {
  panel.querySelectorAll(".matrix").forEach((box) => {
    let columns = box.matrix.rows.length ? box.matrix.rows[0].length : 0;
    fillMatrix(box, columns);
    while (columns > 1 && box.scrollWidth > box.clientWidth + 1) fillMatrix(box, --columns);
  });
}

function stageElement(stage, view) {
  const panel = document.createElement("div");
  panel.className = "stage";
  panel.id = "stage-" + stage.id;
  panel.setAttribute("role", "tabpanel");
  panel.dataset.stage = stage.id;
  const h = document.createElement("h3");
  h.textContent = stage.title;
  panel.appendChild(h);
  const p = document.createElement("p");
  p.innerHTML = stage.text;
  panel.appendChild(p);
  if (stage.equations.length) {
    const eqs = document.createElement("div");
    eqs.className = "equations";
    for (const e of stage.equations) {
      const row = document.createElement("div");
      row.className = "equation";
      row.innerHTML = e.mathml + (e.note ? '<span class="note">' + e.note + "</span>" : "");
      eqs.appendChild(row);
    }
    panel.appendChild(eqs);
  }
  if (stage.check) {
    for (const param of ["dW", "db"]) {
      const err = stage.check[param];
      const badge = document.createElement("span");
      const ok = stage.check[param + "_ok"];  // gradcheck's pass rule, applied by the server
      badge.className = "check " + (ok ? "ok" : "bad");
      badge.textContent = param + " vs finite differences: relative error " + err.toExponential(1) + (ok ? " ✓" : " ✗");
      panel.appendChild(badge);
    }
  }
  const mats = document.createElement("div");
  mats.className = "matrices";
  stage.matrices.forEach((m) => mats.appendChild(matrixElement(m)));
  panel.appendChild(mats);
  return panel;
}

function showStage(k) {
  const stages = [...document.querySelectorAll("#bp-stages .stage")];
  if (!stages.length) return;
  stageIndex = Math.max(0, Math.min(k, stages.length - 1));
  stages.forEach((s, i) => { s.hidden = i !== stageIndex; });
  fitMatrices(stages[stageIndex]);
  document.querySelectorAll("#stage-list button").forEach((b, i) => b.setAttribute("aria-selected", String(i === stageIndex)));
  const chip = document.querySelectorAll("#stage-list button")[stageIndex];
  const layer = Number(chip.dataset.layer), kind = chip.dataset.kind;
  const svg = $("bp-picture").querySelector("svg");
  if (!svg) return;
  svg.querySelectorAll(".layer, .edges").forEach((g) => g.classList.remove("active", "dim"));
  if (kind === "forward" || kind === "backward") {
    svg.querySelectorAll(".edges").forEach((g) => g.classList.toggle(Number(g.dataset.layer) === layer ? "active" : "dim", true));
    svg.querySelectorAll(".layer").forEach((g) => {
      const l = Number(g.dataset.layer);
      g.classList.add(l === layer || l === layer - 1 ? "active" : "dim");
    });
  } else if (kind === "output" || kind === "cost") {
    svg.querySelectorAll(".layer").forEach((g) => g.classList.add(Number(g.dataset.layer) === layer ? "active" : "dim"));
  }
}

async function loadBackprop() {
  const view = await api("/api/backprop?notation=" + encodeURIComponent($("bp-notation").value));
  $("bp-sub").textContent = "the next Step: " + view.m + " example" + (view.m > 1 ? "s" : "") + ", after step " + view.step
    + "; largest relative error of backprop vs finite differences " + view.max_error.toExponential(1);
  $("bp-picture").innerHTML = view.picture;
  const list = $("stage-list"), holder = $("bp-stages");
  list.innerHTML = ""; holder.innerHTML = "";
  view.stages.forEach((stage, i) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.setAttribute("role", "tab");
    chip.dataset.kind = stage.kind;
    chip.dataset.layer = stage.layer;
    chip.textContent = (i + 1) + " " + (stage.short || stage.title);
    chip.title = stage.title;
    chip.addEventListener("click", () => showStage(i));
    list.appendChild(chip);
    holder.appendChild(stageElement(stage, view));
  });
  showStage(Math.min(stageIndex, view.stages.length - 1));
}

// -- actions ----------------------------------------------------------------------------------------
async function refreshViews() {
  await drawBoundary();
  await loadBackprop();
}

function reset(settings) {
  return queue(async () => {
    renderState(await api("/api/reset", settings));
    stageIndex = 0;
    await refreshViews();
  });
}

function step(n) {
  return queue(async () => {
    renderState(await api("/api/step", {n}));
    await refreshViews();
  });
}

async function playLoop() {
  while (playing) {
    try {
      await queue(async () => {
        renderState(await api("/api/step", {n: 1}));
        await drawBoundary();
      });
    } catch (err) {
      setPlaying(false);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  await queue(loadBackprop);
}

function setPlaying(on) {
  playing = on;
  $("play").disabled = on;
  $("pause").disabled = !on;
  $("step").disabled = on;
}

$("step").addEventListener("click", () => step(1).catch(() => {}));
$("reset").addEventListener("click", () => { setPlaying(false); reset(settingsFromForm()).catch(() => {}); });
$("play").addEventListener("click", () => { if (!playing) { setPlaying(true); playLoop(); } });
$("pause").addEventListener("click", () => setPlaying(false));
$("prev-stage").addEventListener("click", () => showStage(stageIndex - 1));
$("bp-notation").addEventListener("change", () => {
  if (lastState) writeUrl(lastState.config);
  queue(loadBackprop).catch(() => {});
});
$("next-stage").addEventListener("click", () => showStage(stageIndex + 1));
form.addEventListener("change", (event) => {
  if (event.target.id === "model-file") return;
  $("model-label").hidden = form.elements.data.value !== "model";
  setPlaying(false);
  reset(settingsFromForm()).catch(() => {});
});
$("model-file").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  setPlaying(false);
  queue(async () => {
    renderState(await api("/api/model", undefined, {method: "POST", body: await file.arrayBuffer()}));
    await refreshViews();
  }).catch(() => {});
});
let refit = null;
window.addEventListener("resize", () => {
  clearTimeout(refit);
  refit = setTimeout(() => {
    const shown = document.querySelector("#bp-stages .stage:not([hidden])");
    if (shown) fitMatrices(shown);
  }, 100);
});
document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select")) return;
  if (event.key === "ArrowRight") showStage(stageIndex + 1);
  if (event.key === "ArrowLeft") showStage(stageIndex - 1);
});

// Settings from the URL (?data=xor&network=8,8&seed=3&batch=4), else the server's defaults.
const query = Object.fromEntries(new URLSearchParams(location.search));
if (query.layers && !query.network) query.network = query.layers;
delete query.layers;
if (query.notation === "columns" || query.notation === "bracket") $("bp-notation").value = query.notation;
delete query.notation;  // the view's notation, not a training setting
// A refused setting stays in the form beside its error, to be corrected (the form showed the defaults).
reset(query).catch(() => setFormFrom(query));
