"""The page `nnctl serve` shows at /: it reads /metadata and builds a form from the input schema (tabular
runs), a canvas to draw on (image runs, such as the digits CNN) or a JSON box (other inputs), posts to
/predict and shows the prediction with one bar per class probability."""

from __future__ import annotations

import html

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nnctl: __NAME__</title>
<style>
body{font-family:system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em;color:#222}
label{display:inline-block;width:14em}input,select{margin:.2em 0;width:10em}
#pad{border:1px solid #888;background:#fff;touch-action:none;cursor:crosshair}
.bar{display:flex;align-items:center;margin:2px 0}.bar span{width:9em}
.bar div.fill{background:#3b7dd8;height:1em}.err{color:#b00}
button{margin:.5em .5em .5em 0;padding:.3em 1em}
</style></head><body>
<h1>__NAME__</h1><p id="about">loading the model's metadata...</p>
<div id="key" hidden><label for="apikey">API key</label><input id="apikey" type="password"></div>
<div id="inputs"></div>
<button id="predict">Predict</button><button id="clear" hidden>Clear</button>
<h2>Prediction</h2><p id="result">-</p><div id="bars"></div>
<script>
let meta = null, draw = null;
const $ = id => document.getElementById(id);
function headers() {
  const h = {"Content-Type": "application/json"};
  if (meta && meta.api_key_required) h["X-API-Key"] = $("apikey").value;
  return h;
}
async function load() {
  const r = await fetch("metadata", {headers: headers()});
  meta = await r.json();
  if (!r.ok) { $("about").textContent = meta.detail; $("key").hidden = false; return; }
  const inp = meta.input;
  $("about").textContent = `${meta.task} model, input ${JSON.stringify(inp.shape)}` +
    (meta.class_names ? `, classes: ${meta.class_names.join(", ")}` : "");
  $("key").hidden = !meta.api_key_required;
  if (inp.kind === "tabular") form(inp); else if (inp.kind === "image") canvas(inp); else textbox(inp);
}
function form(inp) {
  const box = $("inputs");
  for (const f of inp.features) {
    const row = document.createElement("div"), lab = document.createElement("label");
    lab.textContent = f; lab.htmlFor = "f_" + f; row.appendChild(lab);
    let el;
    if (inp.categories[f]) {
      el = document.createElement("select");
      for (const c of inp.categories[f]) {
        const o = document.createElement("option"); o.textContent = c; el.appendChild(o);
      }
    } else { el = document.createElement("input"); el.type = "number"; el.step = "any"; el.value = "0"; }
    el.id = "f_" + f; el.name = f; row.appendChild(el); box.appendChild(row);
  }
}
function body() {
  const inp = meta.input;
  if (inp.kind === "tabular") {
    const ex = {};
    for (const f of inp.features) {
      const v = $("f_" + f).value;
      ex[f] = inp.categories[f] ? v : (v === "" ? null : Number(v));
    }
    return ex;
  }
  if (inp.kind === "image") return {inputs: [draw()]};
  return JSON.parse($("json").value);
}
function canvas(inp) {
  const [h, w, ch] = inp.shape, scale = Math.max(1, Math.floor(256 / Math.max(h, w)));
  const c = document.createElement("canvas"); c.id = "pad"; c.width = w * scale; c.height = h * scale;
  $("inputs").appendChild(c); $("clear").hidden = false;
  const g = c.getContext("2d"); let down = false;
  const clear = () => { g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height); };
  clear(); $("clear").onclick = clear;
  const at = e => { const b = c.getBoundingClientRect(); return [e.clientX - b.left, e.clientY - b.top]; };
  c.onpointerdown = e => { down = true; g.beginPath(); g.moveTo(...at(e)); };
  c.onpointermove = e => { if (!down) return; g.lineWidth = scale * 1.2; g.lineCap = "round"; g.strokeStyle = "#000";
    g.lineTo(...at(e)); g.stroke(); };
  c.onpointerup = c.onpointerleave = () => { down = false; };
  const [lo, hi] = inp.value_range;
  draw = () => {
    const px = g.getImageData(0, 0, c.width, c.height).data, img = [];
    for (let y = 0; y < h; y++) { const row = []; for (let x = 0; x < w; x++) {
      let s = 0;
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++)
        s += 255 - px[((y * scale + dy) * c.width + x * scale + dx) * 4];
      const ink = s / (scale * scale * 255);
      row.push(Array(ch).fill(lo + ink * (hi - lo)));
    } img.push(row); }
    return img;
  };
}
function textbox(inp) {
  const t = document.createElement("textarea"); t.id = "json"; t.rows = 6; t.cols = 70;
  t.value = JSON.stringify({inputs: [[]]}); $("inputs").appendChild(t);
}
async function predict() {
  $("result").className = ""; $("bars").innerHTML = "";
  let r, out;
  try {
    r = await fetch("predict", {method: "POST", headers: headers(), body: JSON.stringify(body())});
    out = await r.json();
  }
  catch (e) { $("result").className = "err"; $("result").textContent = String(e); return; }
  if (!r.ok) { $("result").className = "err"; $("result").textContent = out.detail; return; }
  const p = out.predictions[0];
  if ("value" in p) { $("result").textContent = "value: " + JSON.stringify(p.value); return; }
  $("result").textContent = "class: " + p.class;
  const probs = p.probabilities || [1 - p.probability, p.probability];
  const names = meta.class_names || probs.map((_, i) => String(i));
  probs.forEach((v, i) => {
    const b = document.createElement("div"); b.className = "bar";
    const n = document.createElement("span"), f = document.createElement("div"), t = document.createElement("small");
    n.textContent = names[i]; f.className = "fill"; f.style.width = Math.round(v * 300) + "px";
    t.textContent = " " + v.toFixed(3); b.append(n, f, t);
    b.dataset.cls = names[i]; b.dataset.p = v; $("bars").appendChild(b);
  });
}
$("predict").onclick = predict;
$("apikey").onchange = load;
load();
</script></body></html>
"""


def page_html(name: str) -> str:
    """The page, titled with the run's name."""
    return PAGE.replace("__NAME__", html.escape(name))
