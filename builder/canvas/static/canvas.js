// The Designer's funnel canvas: a Streamlit custom component (v2) over vis-network.
// vis-network's standalone bundle is concatenated in front of this file (it sets globalThis.vis).
// Python sends {nodes, edges, selected, height, revision, read_only}; every gesture goes back as ONE
// trigger, "edit", carrying {type, ...}: select, move, connect, delete_edge. Python decides, saves and
// sends the new document back; the canvas never keeps a change Python did not confirm. read_only (a
// role that may not change the funnel): nodes do not drag, nothing connects or deletes, the edit
// buttons are hidden and the bar says "read only"; only "select" is ever sent.

const VIS = globalThis.vis;
const HANDLE_PX = 7; // radius of the "connect" handle on a stage's right edge, in screen pixels
const MIN_LABEL_PX = 13; // stage labels never draw smaller than this on screen

// The interface words, in English until Python sends the reader's language (data.texts).
const TEXTS = {
  fit: "⤢ Fit to view",
  reset: "1:1 Reset zoom",
  move: "✥ Move",
  connect: "➜ Connect stages",
  delete: "✕ Delete transition",
  delete_edge: "✕ Delete {source} → {target}",
  hint_move: "Drag to move · drag a stage's ● handle (or Shift+drag) to connect · click an arrow to select it",
  hint_connect: "Drag from one stage to another to allow that move.",
  hint_edge: "Press Delete (or the button) to remove this transition.",
  read_only: "Read only: click a stage or a rule to read it.",
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function mount(parent) {
  const root = el("div", "cv-root");
  root.tabIndex = 0;
  const bar = el("div", "cv-bar");
  const fit = el("button", "cv-btn", TEXTS.fit);
  fit.dataset.testid = "canvas-fit";
  const reset = el("button", "cv-btn", TEXTS.reset);
  reset.dataset.testid = "canvas-reset";
  const move = el("button", "cv-btn cv-edit cv-on", TEXTS.move);
  const connect = el("button", "cv-btn cv-edit", TEXTS.connect);
  connect.dataset.testid = "canvas-connect";
  const del = el("button", "cv-btn cv-edit cv-danger", TEXTS.delete);
  del.dataset.testid = "canvas-delete-edge";
  del.disabled = true;
  const hint = el("span", "cv-hint", "");
  bar.append(fit, reset, el("span", "cv-sep cv-edit"), move, connect, el("span", "cv-sep cv-edit"), del, hint);
  const net = el("div", "cv-net");
  root.append(bar, net);
  parent.appendChild(root);

  const nodes = new VIS.DataSet();
  const edges = new VIS.DataSet();
  const network = new VIS.Network(net, { nodes, edges }, {
    autoResize: true,
    physics: false,
    layout: { improvedLayout: false },
    interaction: { hover: true, dragNodes: true, dragView: true, zoomView: true, multiselect: false,
                   selectConnectedEdges: false, tooltipDelay: 250, hoverConnectedEdges: false },
    nodes: { shapeProperties: { borderRadius: 6 }, chosen: false },
    edges: { chosen: false },
  });

  const s = {
    root, net, network, nodes, edges, send: null, mode: "move", hovered: null, connecting: null,
    selectedEdge: null, drag: null, revision: null, fitted: false, lastFont: null, step: 220,
    readOnly: false,
  };

  const setMode = (m) => {
    s.mode = m;
    move.classList.toggle("cv-on", m === "move");
    connect.classList.toggle("cv-on", m === "connect");
    root.classList.toggle("cv-connecting", m === "connect");
    hint.textContent = s.readOnly ? TEXTS.read_only : (m === "connect" ? TEXTS.hint_connect : TEXTS.hint_move);
  };
  setMode("move");
  const emit = (payload) => {
    if (s.readOnly && payload.type !== "select") return;
    if (s.send) s.send("edit", { ...payload, seq: `${Date.now()}-${Math.random().toString(36).slice(2, 8)}` });
  };
  s.emit = emit;

  fit.onclick = () => { network.fit({ animation: { duration: 250 } }); };
  reset.onclick = () => {
    const pos = network.getViewPosition();
    network.moveTo({ position: pos, scale: 1, animation: { duration: 250 } });
  };
  move.onclick = () => setMode("move");
  connect.onclick = () => setMode(s.mode === "connect" ? "move" : "connect");
  const deleteSelected = () => {
    if (!s.selectedEdge) return;
    const e = edges.get(s.selectedEdge);
    if (!e || e.cv !== "transition") return;
    emit({ type: "delete_edge", from: e.from.slice(6), to: e.to.slice(6) });
  };
  del.onclick = deleteSelected;
  root.addEventListener("keydown", (ev) => {
    if ((ev.key === "Delete" || ev.key === "Backspace") && s.selectedEdge) {
      ev.preventDefault();
      deleteSelected();
    } else if (ev.key === "Escape") {
      setMode("move");
    }
  });

  const showEdge = (id) => {
    if (s.readOnly) id = null; // nothing to delete: an arrow is not selected for deletion
    s.selectedEdge = id;
    const e = id ? edges.get(id) : null;
    del.disabled = !e;
    if (e) {
      const a = nodes.get(e.from), b = nodes.get(e.to);
      const name = (n) => (n ? n.label.replace(/\s*\n\s*/g, " ").replace(" 🔒", "") : "?");
      del.textContent = TEXTS.delete_edge.replace("{source}", name(a)).replace("{target}", name(b));
      hint.textContent = TEXTS.hint_edge;
    } else {
      del.textContent = TEXTS.delete;
      setMode(s.mode);
    }
  };

  network.on("click", (p) => {
    root.focus({ preventScroll: true });
    if (p.nodes.length) {
      showEdge(null);
      emit({ type: "select", node: p.nodes[0] });
    } else if (p.edges.length) {
      const e = edges.get(p.edges[0]);
      if (e && e.cv === "transition") showEdge(e.id);
      else { showEdge(null); network.unselectAll(); }
    } else {
      showEdge(null);
    }
  });
  network.on("hoverNode", (p) => { s.hovered = p.node; network.redraw(); });
  network.on("blurNode", () => { s.hovered = null; network.redraw(); });

  // A stage drags the rules drawn with it; the position goes to Python when the drag ends.
  network.on("dragStart", (p) => {
    if (s.readOnly || !p.nodes.length) return;
    const id = p.nodes[0];
    const start = network.getPositions([id])[id];
    const followers = id.startsWith("stage:")
      ? nodes.get({ filter: (n) => n.attachedTo === id }).map((n) => n.id) : [];
    s.drag = { id, start, followers, at: network.getPositions(followers) };
  });
  network.on("dragging", (p) => {
    if (!s.drag || !p.nodes.length) return;
    const now = network.getPositions([s.drag.id])[s.drag.id];
    const dx = now.x - s.drag.start.x, dy = now.y - s.drag.start.y;
    for (const f of s.drag.followers) network.moveNode(f, s.drag.at[f].x + dx, s.drag.at[f].y + dy);
  });
  network.on("dragEnd", () => {
    const d = s.drag;
    s.drag = null;
    if (!d) return;
    const now = network.getPositions([d.id])[d.id];
    if (Math.hypot(now.x - d.start.x, now.y - d.start.y) < 2) return;
    emit({ type: "move", node: d.id, x: Math.round(now.x * 10) / 10, y: Math.round(now.y * 10) / 10 });
  });

  // Connecting: our own gesture, caught before vis-network sees the pointer (capture phase).
  const domPoint = (ev) => {
    const r = net.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  };
  const handleOf = (id) => {
    const b = network.getBoundingBox(id);
    return { x: b.right, y: (b.top + b.bottom) / 2 };
  };
  const stageAt = (pt) => {
    const id = network.getNodeAt(pt);
    if (id && id.startsWith("stage:")) return id;
    // The handle sticks out of the box a little: count a press on it too.
    const c = network.DOMtoCanvas(pt), scale = network.getScale();
    for (const n of nodes.get({ filter: (n) => n.cv === "stage" })) {
      const h = handleOf(n.id);
      if (Math.hypot(c.x - h.x, c.y - h.y) * scale <= HANDLE_PX + 3) return n.id;
    }
    return null;
  };
  const onHandle = (id, pt) => {
    const c = network.DOMtoCanvas(pt), h = handleOf(id);
    return Math.hypot(c.x - h.x, c.y - h.y) * network.getScale() <= HANDLE_PX + 3;
  };
  const stop = (ev) => { ev.stopPropagation(); ev.preventDefault(); };
  net.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0 || s.readOnly) return;
    const pt = domPoint(ev);
    const id = stageAt(pt);
    if (!id || !(s.mode === "connect" || ev.shiftKey || onHandle(id, pt))) return;
    stop(ev);
    s.connecting = { from: id, pointer: network.DOMtoCanvas(pt), over: null };
    net.setPointerCapture?.(ev.pointerId);
    network.redraw();
  }, true);
  net.addEventListener("pointermove", (ev) => {
    if (!s.connecting) return;
    stop(ev);
    const pt = domPoint(ev);
    s.connecting.pointer = network.DOMtoCanvas(pt);
    const over = stageAt(pt);
    s.connecting.over = over && over !== s.connecting.from ? over : null;
    network.redraw();
  }, true);
  const finish = (ev) => {
    if (!s.connecting) return;
    stop(ev);
    const c = s.connecting;
    s.connecting = null;
    const to = stageAt(domPoint(ev));
    network.redraw();
    if (to && to !== c.from) emit({ type: "connect", from: c.from.slice(6), to: to.slice(6) });
  };
  net.addEventListener("pointerup", finish, true);
  net.addEventListener("pointercancel", (ev) => { if (s.connecting) { stop(ev); s.connecting = null; network.redraw(); } }, true);
  // vis-network listens to mouse events too: keep them away while connecting.
  for (const t of ["mousedown", "mousemove", "mouseup"]) {
    net.addEventListener(t, (ev) => { if (s.connecting || (t === "mousedown" && ev.shiftKey)) stop(ev); }, true);
  }

  network.on("afterDrawing", (ctx) => {
    const scale = network.getScale();
    const show = s.connecting || s.readOnly ? null : (s.mode === "connect" ? null : s.hovered);
    const draw = (id, filled) => {
      const h = handleOf(id);
      ctx.beginPath();
      ctx.arc(h.x, h.y, HANDLE_PX / scale, 0, 2 * Math.PI);
      ctx.fillStyle = filled ? "#111827" : "#FFFFFF";
      ctx.strokeStyle = "#111827";
      ctx.lineWidth = 2 / scale;
      ctx.fill();
      ctx.stroke();
    };
    if (show && show.startsWith("stage:")) draw(show, false);
    if (s.connecting) {
      const c = s.connecting, from = handleOf(c.from), to = c.over ? network.getPositions([c.over])[c.over] : c.pointer;
      ctx.save();
      ctx.setLineDash([8 / scale, 6 / scale]);
      ctx.strokeStyle = c.over ? "#16A34A" : "#111827";
      ctx.lineWidth = 3 / scale;
      ctx.beginPath();
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
      ctx.restore();
      draw(c.from, true);
      if (c.over) {
        const b = network.getBoundingBox(c.over);
        ctx.strokeStyle = "#16A34A";
        ctx.lineWidth = 4 / scale;
        ctx.strokeRect(b.left - 4 / scale, b.top - 4 / scale, b.right - b.left + 8 / scale, b.bottom - b.top + 8 / scale);
      }
    }
  });

  // Legible at any zoom: when zoomed out, stage labels grow in canvas units so that they stay at least
  // MIN_LABEL_PX on screen (the layout leaves room for that at fit-to-view).
  let pending = false;
  const legible = () => {
    pending = false;
    const scale = network.getScale();
    // ... but never wider than the gap between neighbouring stages (``step`` canvas units apart).
    const stages = nodes.get({ filter: (n) => n.cv === "stage" });
    const longest = Math.max(6, ...stages.flatMap((n) => n.label.split("\n").map((l) => l.length)));
    const fits = (s.step - 40) / (longest * 0.58);
    const size = Math.round(Math.max(16, Math.min(44, MIN_LABEL_PX / scale, fits)));
    if (size === s.lastFont) return;
    s.lastFont = size;
    nodes.update(stages.map((n) => ({ id: n.id, font: { ...n.font, size } })));
  };
  s.legible = () => { if (!pending) { pending = true; requestAnimationFrame(legible); } };
  network.on("zoom", s.legible);
  // The first fit waits until the page has given the canvas its size (before that it is 0 px wide).
  s.fitWhenSized = () => {
    const go = () => {
      if (net.clientWidth > 0 && net.clientHeight > 0) {
        network.setSize("100%", `${net.clientHeight}px`);
        network.redraw();
        network.fit({ animation: false });
        s.legible();
        return true;
      }
      return false;
    };
    if (go()) return;
    const ro = new ResizeObserver(() => { if (go()) ro.disconnect(); });
    ro.observe(net);
  };
  s.setMode = setMode;
  s.setReadOnly = (ro) => {
    if (ro === s.readOnly) return;
    s.readOnly = ro;
    s.connecting = null;
    root.classList.toggle("cv-readonly", ro);
    root.dataset.readonly = ro ? "true" : "false";
    network.setOptions({ interaction: { dragNodes: !ro } });
    showEdge(null);
    setMode("move");
  };
  s.showEdge = showEdge;
  s.relabel = () => {
    fit.textContent = TEXTS.fit;
    reset.textContent = TEXTS.reset;
    move.textContent = TEXTS.move;
    connect.textContent = TEXTS.connect;
    showEdge(s.selectedEdge);
  };
  return s;
}

function update(s, data) {
  if (data.texts && JSON.stringify(data.texts) !== s.texts) {
    s.texts = JSON.stringify(data.texts);
    Object.assign(TEXTS, data.texts);
    s.relabel();
  }
  s.setReadOnly(Boolean(data.read_only));
  s.step = data.step || 220;
  s.net.style.height = `${data.height || 600}px`;
  const incoming = data.nodes || [];
  const keep = new Set(incoming.map((n) => n.id));
  s.nodes.remove(s.nodes.getIds().filter((id) => !keep.has(id)));
  const font = s.lastFont;
  s.nodes.update(incoming.map((n) => (n.cv === "stage" && font ? { ...n, font: { ...n.font, size: font } } : n)));
  const ekeep = new Set((data.edges || []).map((e) => e.id));
  s.edges.remove(s.edges.getIds().filter((id) => !ekeep.has(id)));
  s.edges.update(data.edges || []);
  if (s.selectedEdge && !ekeep.has(s.selectedEdge)) s.showEdge(null);
  const sel = data.selected && keep.has(data.selected) ? [data.selected] : [];
  s.network.setSelection({ nodes: sel, edges: s.selectedEdge ? [s.selectedEdge] : [] }, { unselectAll: true, highlightEdges: false });
  if (!s.fitted || data.fit) {
    s.fitted = true;
    s.fitWhenSized();
  }
  s.legible();
  s.root.dataset.revision = String(data.revision ?? "");
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let s = parentElement.__conveyorCanvas;
  if (!s) {
    s = mount(parentElement);
    parentElement.__conveyorCanvas = s;
    // For tests and debugging: the network of the canvas (positions, canvas ↔ page coordinates).
    s.root.__network = s.network;
  }
  s.send = setTriggerValue;
  update(s, data || {});
  return () => {
    s.network.destroy();
    delete parentElement.__conveyorCanvas;
  };
}
