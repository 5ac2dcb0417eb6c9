"""The demo pages: one HTML page per served export, by task; everything on them comes from the JSON API.

The server fills in only the export's key, kind and the navigation; the script asks ``/api/<key>/info`` for the
examples, ``/api/gallery`` for the gallery, and posts the actions. ``document.body.dataset.state`` is ``busy``
while a request runs, then ``done`` or ``error`` (the browser tests wait on it).
"""

from __future__ import annotations

import html
import json

TITLES = {"retrieval": "Image retrieval from an image and a modification",
          "text_to_image": "Text to image", "modify": "Modify an image by text",
          "scene_graph": "Scene graph (or caption) to image", "draw_edit": "Draw and edit, one instruction at a time",
          "generic": "Signatures"}

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:baseline;flex-wrap:wrap}
header a{color:#b3e5fc;text-decoration:none} header a.current{color:#fff;font-weight:bold}
main{padding:1em 1.2em;max-width:70em}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8em 1em;margin:0 0 1em}
h2{font-size:1.05em;margin:.1em 0 .6em}
label{margin-right:1em} input[type=text],textarea{width:100%;box-sizing:border-box;font-size:1em;padding:.3em}
input[type=number]{width:6em}
button{font-size:1em;padding:.3em .9em;cursor:pointer}
#submit{background:#0277bd;color:#fff;border:0;border-radius:4px;padding:.45em 1.2em}
.row{display:flex;gap:1em;align-items:flex-start;flex-wrap:wrap}
img{image-rendering:pixelated}
#gallery{display:flex;flex-wrap:wrap;gap:4px;max-height:300px;overflow-y:auto}
.gallery-item{width:64px;height:64px;border:3px solid transparent;cursor:pointer;position:relative}
.gallery-item.selected{border-color:#0277bd}
.gallery-item.has-queries{outline:1px dashed #8bc34a}
#source-preview img{width:128px;height:128px;border:1px solid #ccc}
.examples,.queries{max-height:7.5em;overflow-y:auto;margin:.3em 0}
.examples button,.queries button{margin:2px;font-size:.85em;background:#eceff1;border:1px solid #cfd8dc;border-radius:12px;text-align:left}
.result,.sample{display:inline-block;text-align:center;margin:4px;vertical-align:top}
.result img,.sample img.final{width:128px;height:128px;border:3px solid #eee}
.result.expected img{border-color:#2e7d32} .result .tag{color:#2e7d32;font-weight:bold;font-size:.8em}
.sample img.stage1{width:64px;height:64px;border:1px solid #ccc}
.score,.name{font-size:.8em;color:#555}
.sample.with-attention{display:flex;gap:.8em;text-align:left;margin:.4em 0}
.attention{display:flex;flex-wrap:wrap;gap:2px;max-width:52em}
.word-map{display:inline-block;text-align:center;margin:2px;font-size:.75em}
.word-map img{width:48px;height:48px;display:block}
#error{display:none;background:#ffebee;color:#b71c1c;border:1px solid #ef9a9a;border-radius:4px;padding:.6em}
#status{color:#555;font-style:italic}
.note{color:#666;font-size:.85em}
#canvas{width:256px;height:256px;border:1px solid #999;background:#fff}
#history{display:flex;gap:6px;overflow-x:auto;padding:4px 0}
.turn{flex:0 0 auto;width:84px;text-align:center;font-size:.75em;cursor:pointer}
.turn img{width:72px;height:72px;border:2px solid #ddd;display:block;margin:0 auto 2px}
.turn.current img{border-color:#0277bd}
.episode{margin:.2em 0} .episode .label{font-size:.8em;color:#555;margin-right:.3em}
#start-over{margin-left:.5em}
"""

SOURCE_PICKER = """
<section id="source-section"><h2>1. Source image</h2>
<div class="row"><div style="flex:1;min-width:20em">
<div id="gallery"></div>
<p><button type="button" id="gallery-more">more images</button>
<label><input type="checkbox" id="gallery-queries-only"> only images with held-out queries</label>
<span class="note" id="gallery-note"></span></p>
<p>or upload a PNG / JPEG: <input type="file" id="upload" accept="image/png,image/jpeg"></p>
</div><div><div id="source-preview"></div><div class="name" id="source-name">no image chosen</div></div></div>
<div id="queries-box" style="display:none"><p class="note">Held-out instructions for this image
(their target is marked in the results):</p><div class="queries" id="queries"></div></div>
</section>"""

# The fixed instructions a draw-and-edit page offers when no held-out records are known (CSS wording).
FIXED_EDIT_EXAMPLES = ["add large red circle to top-left", "add small blue rectangle to bottom-right",
                       "add large green triangle to middle-center", "remove top-left red object"]

DRAW_EDIT_START = SOURCE_PICKER.replace(
    "<h2>1. Source image</h2>",
    '<h2>1. Start canvas</h2><p><button type="button" id="blank">blank canvas</button> '
    '<span class="note">(the default) or a gallery image or an upload; choosing one starts over</span></p>').replace(
    "(their target is marked in the results)", "(the same wording the model reads)")

CONTROLS = {
    "draw_edit": """
<section id="edit-section"><h2>2. Instruction</h2>
<div class="row"><div><img id="canvas" alt="current canvas"><div class="name" id="canvas-caption"></div></div>
<div style="flex:1;min-width:20em">
<input type="text" id="text" placeholder="e.g. add large red circle to top-left">
<div class="examples" id="examples"></div>
<p><label>seed <input type="number" id="seed" value="0"></label>
<button type="button" id="submit">edit</button><button type="button" id="start-over">start over</button>
<span id="status"></span></p>
<p class="note" id="turn-note"></p>
<details><summary class="note">recurrent state (sent back with the next instruction)</summary>
<pre id="state" style="white-space:pre-wrap;font-size:.75em"></pre></details>
</div></div>
<h2>History</h2><div id="history"></div>
<p class="note">Click a turn to continue from it (later turns are dropped).</p></section>""",
    "retrieval": """
<section><h2>2. Modification</h2>
<input type="text" id="text" placeholder="e.g. make top-left small red circle blue">
<div class="examples" id="examples"></div>
<p><label>top k <input type="number" id="top-k" value="10" min="1"></label>
<button type="button" id="submit">retrieve</button> <span id="status"></span></p></section>""",
    "modify": """
<section><h2>2. Instruction</h2>
<input type="text" id="text" placeholder="e.g. add large blue triangle to the center">
<div class="examples" id="examples"></div>
<p><label>samples <input type="number" id="num-samples" value="4" min="1"></label>
<label>seed <input type="number" id="seed" value="0"></label>
<button type="button" id="submit">generate</button> <span id="status"></span></p></section>""",
    "text_to_image": """
<section><h2>Caption</h2>
<input type="text" id="text" placeholder="e.g. a large red circle at the top left">
<div class="examples" id="examples"></div>
<p><label>samples <input type="number" id="num-samples" value="4" min="1"></label>
<label>seed <input type="number" id="seed" value="0"></label>
<button type="button" id="submit">generate</button> <span id="status"></span></p></section>""",
    "scene_graph": """
<section><h2>Caption or scene graph</h2>
<textarea id="text" rows="3" placeholder='a large red circle at the top left, or {"objects": [...], "relationships": [...]}'></textarea>
<div class="examples" id="examples"></div>
<p><label>samples <input type="number" id="num-samples" value="4" min="1"></label>
<label>seed <input type="number" id="seed" value="0"></label>
<button type="button" id="submit">generate</button> <span id="status"></span></p></section>""",
}

SCRIPT = r"""
const KEY = document.body.dataset.export, KIND = document.body.dataset.kind;
const $ = id => document.getElementById(id);
const el = (tag, attrs, ...kids) => { const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === "class") e.className = v; else e.setAttribute(k, v); }
  for (const c of kids) e.append(c); return e; };
const png = b64 => "data:image/png;base64," + b64;
let source = null, galleryOffset = 0;

function showError(message) { const box = $("error"); box.textContent = message; box.style.display = "block";
  document.body.dataset.state = "error"; if ($("status")) $("status").textContent = ""; }
function clearError() { $("error").style.display = "none"; $("error").textContent = ""; }

async function api(path, body) {
  let resp;
  try {
    resp = body === undefined ? await fetch(path)
      : await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  } catch (e) { throw new Error("the server did not answer (" + e.message + ")"); }
  let data;
  try { data = await resp.json(); } catch (e) { throw new Error("the server answered HTTP " + resp.status + " without JSON"); }
  if (!resp.ok) throw new Error(data.error || ("HTTP " + resp.status));
  return data;
}

async function run(action, body, render, keep) {
  clearError(); document.body.dataset.state = "busy"; $("status").textContent = "working...";
  try { const data = await api("/api/" + KEY + "/" + action, body); if (!keep) $("results").replaceChildren(); render(data);
        $("status").textContent = ""; document.body.dataset.state = "done"; }
  catch (e) { if (!keep) $("results").replaceChildren(); showError(e.message); }
}

function number(id) { const v = $(id).value.trim(); return /^-?\d+$/.test(v) ? Number(v) : v; }

function examples(list) {
  const box = $("examples"); if (!box) return;
  if (!list.length) { box.append(el("span", {class: "note"}, "No held-out examples: start the server with --data_dir=RECORDS to get some.")); return; }
  box.append(el("span", {class: "note"}, "Held-out examples: "));
  for (const t of list) { const b = el("button", {type: "button", class: "example"}, t);
    b.onclick = () => { $("text").value = t; }; box.append(b); }
}

// ---------------------------------------------------------------- source picker (retrieval, modify)
function setSource(src, name, url) {
  source = src; $("source-preview").replaceChildren(el("img", {src: url, alt: name, id: "source-image"}));
  $("source-name").textContent = name;
  for (const g of document.querySelectorAll(".gallery-item"))
    g.classList.toggle("selected", src.gallery_id !== undefined && Number(g.dataset.id) === src.gallery_id);
  if (KIND === "draw_edit") startOver();
}

async function pickGallery(item) {
  setSource({gallery_id: item.id}, item.name, item.thumbnail);
  $("queries").replaceChildren(); $("queries-box").style.display = "none";
  if (!item.num_queries) return;
  try {
    const full = await api("/api/gallery/" + item.id);
    for (const q of full.queries) { const b = el("button", {type: "button", class: "query-example"}, q.text);
      b.onclick = () => { $("text").value = q.text; }; $("queries").append(b); }
    $("queries-box").style.display = "block";
  } catch (e) { showError(e.message); }
}

async function loadGallery(reset) {
  if (reset) { galleryOffset = 0; $("gallery").replaceChildren(); }
  const only = $("gallery-queries-only").checked ? "&with_queries=1" : "";
  try {
    const page = await api("/api/gallery?offset=" + galleryOffset + "&limit=48" + only);
    for (const item of page.items) {
      const img = el("img", {src: item.thumbnail, alt: item.name, title: item.name + (item.num_queries ? " (" + item.num_queries + " held-out queries)" : ""),
                             class: "gallery-item" + (item.num_queries ? " has-queries" : ""), "data-id": item.id});
      img.onclick = () => pickGallery(item); $("gallery").append(img);
    }
    galleryOffset += page.items.length;
    $("gallery-more").style.display = galleryOffset < page.total ? "" : "none";
    $("gallery-note").textContent = galleryOffset + " of " + page.total + " images";
  } catch (e) { $("gallery-note").textContent = "no gallery: upload an image (" + e.message + ")"; $("gallery-more").style.display = "none"; }
}

function initSourcePicker() {
  if (!$("gallery")) return;
  $("gallery-more").onclick = () => loadGallery(false);
  $("gallery-queries-only").onchange = () => loadGallery(true);
  $("upload").onchange = () => { const f = $("upload").files[0]; if (!f) return; const r = new FileReader();
    r.onload = () => { setSource({image: r.result}, f.name + " (upload)", r.result);
      $("queries").replaceChildren(); $("queries-box").style.display = "none"; }; r.readAsDataURL(f); };
  loadGallery(true);
}

function resultTile(r) {
  const tile = el("div", {class: "result" + (r.expected ? " expected" : ""), "data-id": r.id, "data-score": r.score},
                  el("img", {src: r.thumbnail, alt: r.name}), el("div", {class: "score"}, r.score.toFixed(4)),
                  el("div", {class: "name"}, r.name));
  if (r.expected) tile.append(el("div", {class: "tag"}, "expected target"));
  return tile;
}

// ---------------------------------------------------------------- draw and edit (geneva)
// turns: [{text, image (base64 PNG), state ([numbers]), known_words, unknown_words}]; the start canvas is `source`.
let turns = [], canvasSize = 64;

function blankUrl() { const c = document.createElement("canvas"); c.width = c.height = canvasSize;
  const g = c.getContext("2d"); g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height); return c.toDataURL("image/png"); }

function startOver() { turns = []; renderEpisode(); }

function renderEpisode() {
  const startUrl = $("source-image") ? $("source-image").src : blankUrl();
  const last = turns[turns.length - 1];
  $("canvas").src = last ? png(last.image) : startUrl;
  $("canvas-caption").textContent = last ? "after turn " + turns.length : "start: " + $("source-name").textContent;
  document.body.dataset.turn = String(turns.length);
  $("state").textContent = last ? JSON.stringify(last.state) : "(none yet: the first turn starts from a zero state)";
  const strip = $("history"); strip.replaceChildren();
  const tile = (i, url, label) => { const t = el("div", {class: "turn" + (i === turns.length ? " current" : ""), "data-turn": i},
      el("img", {src: url, alt: label}), label); t.onclick = () => { turns = turns.slice(0, i); renderEpisode(); }; return t; };
  strip.append(tile(0, startUrl, "start"));
  turns.forEach((t, i) => strip.append(tile(i + 1, png(t.image), (i + 1) + ". " + t.text)));
  strip.scrollLeft = strip.scrollWidth;
}

function submitEdit(text) {
  if (!source) { showError("Choose a start canvas first: blank, a gallery image or an upload."); return; }
  const last = turns[turns.length - 1], seed = number("seed");
  const body = last ? {image: last.image, state: last.state, text, seed} : {...source, text, seed};
  run("edit", body, data => {
    turns.push({text: data.text, image: data.image, state: data.state, known_words: data.known_words,
                unknown_words: data.unknown_words});
    $("turn-note").textContent = "turn " + turns.length + " (" + data.signature + "): " + data.known_words + " known word(s)" +
      (data.unknown_words.length ? "; ignored unknown word(s): " + data.unknown_words.join(", ") : "");
    $("text").value = ""; renderEpisode();
  }, true);
}

function editExamples(info) {
  const box = $("examples");
  if (info.example_episodes.length) {
    box.append(el("div", {class: "note"}, "Held-out episodes (each from a blank canvas; click their turns in order):"));
    info.example_episodes.forEach((episode, e) => { const row = el("div", {class: "episode"}, el("span", {class: "label"}, "episode " + (e + 1) + ":"));
      episode.forEach(t => { const b = el("button", {type: "button", class: "example episode-example"}, t);
        b.onclick = () => { $("text").value = t; }; row.append(b); }); box.append(row); });
  } else {
    box.append(el("span", {class: "note"}, "Examples (fixed, not from data; start the server with --data_dir=RECORDS of python -m datasets.css.edits for held-out ones): "));
    for (const t of FIXED) { const b = el("button", {type: "button", class: "example"}, t); b.onclick = () => { $("text").value = t; }; box.append(b); }
  }
}

// ---------------------------------------------------------------- actions per kind
function submit() {
  const text = $("text").value;
  if (KIND === "draw_edit") { submitEdit(text); return; }
  if (KIND === "retrieval" || KIND === "modify") {
    if (!source) { showError("Choose a source image first: click one in the gallery or upload one."); return; }
  }
  if (KIND === "retrieval") {
    run("retrieve", {...source, text, top_k: number("top-k")}, data => {
      const out = $("results");
      out.append(el("p", {class: "note", id: "expected-note"}, data.expected === null
        ? "Not a held-out query: no expected target is known."
        : "Held-out query: images of the expected target scene are marked (" + data.expected.length + " in the gallery)."));
      for (const r of data.results) out.append(resultTile(r));
    });
  } else if (KIND === "modify") {
    run("modify", {...source, text, num_samples: number("num-samples"), seed: number("seed")}, data => {
      const gen = el("div", {id: "generated"}, el("h3", {}, "Generated"));
      data.images.forEach((b, i) => gen.append(el("div", {class: "sample"}, el("img", {class: "final", src: png(b), alt: "sample " + i}))));
      const ret = el("div", {id: "retrieved"}, el("h3", {}, "Retrieved by TIRG"));
      if (data.retrieved) for (const r of data.retrieved) ret.append(resultTile(r));
      else ret.append(el("p", {class: "note"}, "Serve a tirg export too (another --export_dir) to see what it retrieves."));
      $("results").append(el("div", {class: "row"}, gen, ret));
    });
  } else {
    run("draw", {text, num_samples: number("num-samples"), seed: number("seed")}, data => {
      const out = $("results");
      if (data.objects) out.append(el("p", {class: "note"}, "Objects: " + (data.objects.join(", ") || "none")));
      data.images.forEach((b, i) => {
        const tile = el("div", {class: "sample", "data-index": i});
        if (data.stage1_images) tile.append(el("div", {class: "row"},
          el("figure", {}, el("img", {class: "stage1", src: png(data.stage1_images[i]), alt: "Stage-I " + i}), el("figcaption", {}, "Stage-I")),
          el("figure", {}, el("img", {class: "final", src: png(b), alt: "Stage-II " + i}), el("figcaption", {}, "Stage-II"))));
        else tile.append(el("img", {class: "final", src: png(b), alt: "sample " + i}));
        if (data.attention) { tile.classList.add("with-attention"); const maps = el("div", {class: "attention"});
          data.attention.words.forEach((w, t) => maps.append(el("div", {class: "word-map"},
            el("img", {src: png(data.attention.maps[i][t]), alt: w}), w)));
          tile.append(maps); }
        out.append(tile);
      });
    });
  }
}

async function initGeneric() {
  for (const form of document.querySelectorAll("form[data-action]")) form.addEventListener("submit", async ev => {
    ev.preventDefault(); const body = {};
    for (const f of form.querySelectorAll("[data-kind]")) {
      const kind = f.dataset.kind;
      if (kind === "image") { if (!f.files.length) continue;
        body[f.name] = await new Promise(r => { const fr = new FileReader(); fr.onload = () => r(fr.result); fr.readAsDataURL(f.files[0]); });
      } else if (kind === "text") body[f.name] = form.dataset.action === "match" ? f.value.split("\n").filter(l => l.trim()) : [f.value];
      else if (kind === "array") { try { body[f.name] = JSON.parse(f.value); } catch (e) { body[f.name] = f.value; } }
      else body[f.name] = number(f.id);
    }
    run(form.dataset.action, body, data => {
      for (const [k, v] of Object.entries(data)) {
        if (Array.isArray(v) && v.length && typeof v[0] === "string") v.forEach(b => $("results").append(el("img", {src: png(b), class: "final"})));
        else $("results").append(el("pre", {}, k + ": " + JSON.stringify(v)));
      }
    });
  });
}

async function init() {
  if (KIND === "generic") { initGeneric(); return; }
  $("submit").onclick = submit;
  $("text").addEventListener("keydown", ev => { if (ev.key === "Enter" && KIND !== "scene_graph") submit(); });
  initSourcePicker();
  if (KIND === "draw_edit") {
    $("start-over").onclick = () => { clearError(); startOver(); };
    $("blank").onclick = () => setSource({blank: true}, "blank canvas", blankUrl());
  }
  try { const info = await api("/api/" + KEY + "/info");
        if (KIND === "draw_edit") { canvasSize = info.image_size || 64; setSource({blank: true}, "blank canvas", blankUrl()); editExamples(info); }
        else examples(info.examples);
        if ($("num-samples")) $("num-samples").max = info.max_samples; if ($("top-k")) $("top-k").max = info.max_top_k; }
  catch (e) { showError(e.message); }
  document.body.dataset.ready = "1";
}
init();
"""

GENERIC_FIELD = {
    "text": '<label>{name}<br><textarea id="f-{action}-{name}" name="{name}" data-kind="text" rows="3" cols="60"></textarea></label>',
    "image": '<label>{name} <input type="file" id="f-{action}-{name}" accept="image/png,image/jpeg" name="{name}" data-kind="image"></label>',
    "integer": '<label>{name} <input type="number" id="f-{action}-{name}" step="1" value="{default}" name="{name}" data-kind="integer"></label>',
    "number": '<label>{name} <input type="number" id="f-{action}-{name}" value="{default}" name="{name}" data-kind="number"></label>',
    "array": '<label>{name} (JSON)<br><textarea id="f-{action}-{name}" name="{name}" data-kind="array" rows="3" cols="60"></textarea></label>',
}
GENERIC_DEFAULTS = {"seed": 0, "num_images": 8}


def _generic_forms(demo) -> str:
    forms = []
    for action in demo.model.actions:
        fields = ({"image": "image", "text": "text"} if action == "match" else demo.model.inputs[action])
        body = "".join(GENERIC_FIELD[kind].format(name=html.escape(n), action=html.escape(action),
                                                  default=GENERIC_DEFAULTS.get(n, 0)) for n, kind in fields.items())
        note = " (one caption per line)" if action == "match" else ""
        forms.append(f'<section><form data-action="{html.escape(action)}"><h2>{html.escape(action)}{note}</h2>{body}'
                     f' <button type="submit">run</button></form></section>')
    forms.append('<p><span id="status"></span></p>')
    return "".join(forms)


def _nav(current, demos) -> str:
    links = "".join(f'<a href="/demo/{html.escape(k)}" class="{"current" if d is current else ""}">'
                    f'{html.escape(d.model.model_name)} &middot; {html.escape(d.kind.replace("_", " "))}</a>'
                    for k, d in demos.items())
    return f'<header><strong>t2i_tf demo</strong>{links}</header>'


def render_page(demo, demos) -> str:
    """The page of one served export (its kind decides the controls)."""
    kind = demo.kind
    start = {"retrieval": SOURCE_PICKER, "modify": SOURCE_PICKER, "draw_edit": DRAW_EDIT_START}.get(kind, "")
    body = _generic_forms(demo) if kind == "generic" else start + CONTROLS[kind]
    title = f"{TITLES[kind]} &middot; {html.escape(demo.model.model_name)}"
    hidden = ' style="display:none"' if kind == "draw_edit" else ""  # its results are the canvas and history
    size = demo.model.description.get("image_size")
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>t2i_tf: {title}</title><style>{STYLE}</style>'
            f'</head><body data-export="{html.escape(demo.key)}" data-kind="{kind}" data-state="idle">'
            f'{_nav(demo, demos)}<main><h1>{title}</h1>'
            f'<p class="note">export <code>{html.escape(demo.key)}</code>, {html.escape(str(size))} px images. '
            f'API: <code>/api/{html.escape(demo.key)}/...</code> (docs/demo.md).</p>'
            f'{body}<div id="error" role="alert"></div><section{hidden}><h2>Results</h2><div id="results"></div></section>'
            f'</main><script>const FIXED = {json.dumps(FIXED_EDIT_EXAMPLES)};{SCRIPT}</script></body></html>')


def render_index(demos) -> str:
    """``/`` with several exports: a link per demo."""
    items = "".join(f'<li><a href="/demo/{html.escape(k)}">{TITLES[d.kind]}: {html.escape(d.model.model_name)}</a></li>'
                    for k, d in demos.items())
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>t2i_tf demo</title><style>{STYLE}</style></head>'
            f'<body data-kind="index">{_nav(None, demos)}<main><h1>Demos</h1><ul>{items}</ul></main></body></html>')
