// The backward explorer: draws DATA (written by tinygrad_edu.explorer) as SVG and replays the
// sweep. State is one number, `applied`: how many VJP steps have run (0 .. steps.length). Steps
// are numbered from 1 wherever the page shows a number: after `applied` steps, the header, the
// panel and the last log entry all say step `applied`.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const BOX_W = 150, BOX_H = 46, MARGIN = 24;
  const steps = DATA.steps, nodes = DATA.nodes;
  let applied = 0, timer = null;

  // ------------------------------------------------------------------ formatting
  function fmt(x) {
    if (x === null || x === undefined) return "-";
    if (!Number.isFinite(x)) return String(x);
    const a = Math.abs(x);
    if (a !== 0 && (a >= 1e4 || a < 1e-3)) return x.toExponential(2);
    return String(+x.toPrecision(4));
  }
  function shape(s) {
    if (!s) return "";
    return "(" + s.join(", ") + (s.length === 1 ? ",)" : ")");
  }
  function summary(s) {
    if (!s) return "-";
    const head = s.head.map(fmt).join(", ");
    const more = s.head.length < s.shape.reduce((a, b) => a * b, 1) ? ", …" : "";
    return `${shape(s.shape)} |·| ${fmt(s.norm)}  mean ${fmt(s.mean)}  min ${fmt(s.min)}  max ${fmt(s.max)}\n[${head}${more}]`;
  }
  function el(tag, attrs, parent, ns) {
    const e = ns ? document.createElementNS(SVG, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }
  function nodeName(i) {
    if (i === null || i === undefined) return "(not drawn)";
    const n = nodes[i];
    return n.members > 1 ? `${n.label} (${n.members} tensors)` : `${n.label} ${shape(n.shape)}`;
  }

  // ------------------------------------------------------------------ drawing
  const svg = document.getElementById("graph"), canvas = document.getElementById("canvas");
  const fullW = DATA.width + 2 * MARGIN, fullH = DATA.height + 2 * MARGIN;
  svg.setAttribute("viewBox", `0 0 ${fullW} ${fullH}`);
  let zoom = Math.min(1, Math.max(0.7, (canvas.clientWidth - 8) / fullW));
  function applyZoom() {
    svg.setAttribute("width", fullW * zoom);
    svg.setAttribute("height", fullH * zoom);
  }
  applyZoom();
  function follow(i) {  // keep the popped tensor in view
    const n = nodes[i], left = (n.x + MARGIN) * zoom, right = left + BOX_W * zoom;
    if (left < canvas.scrollLeft || right > canvas.scrollLeft + canvas.clientWidth) {
      canvas.scrollLeft = left - canvas.clientWidth / 2;
    }
    const top = (n.y + MARGIN) * zoom;
    if (top < canvas.scrollTop || top + BOX_H * zoom > canvas.scrollTop + canvas.clientHeight) {
      canvas.scrollTop = top - canvas.clientHeight / 2;
    }
  }
  const defs = el("defs", {}, svg, true);
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs, true);
  el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#e4572e" }, marker, true);
  const root = el("g", { transform: `translate(${MARGIN},${MARGIN})` }, svg, true);
  const edgeLayer = el("g", {}, root, true), flowLayer = el("g", {}, root, true);
  const nodeLayer = el("g", {}, root, true);

  function curve(from, to) {  // from the right edge of `from` to the left edge of `to`
    const a = nodes[from], b = nodes[to];
    const x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2, x2 = b.x, y2 = b.y + BOX_H / 2;
    const bend = Math.max(30, (x2 - x1) / 2);
    return `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
  }
  for (const [from, to] of DATA.edges) el("path", { class: "edge", d: curve(from, to) }, edgeLayer, true);
  const boxes = nodes.map((n, i) => {
    const g = el("g", { class: "node" + (n.leaf ? " leaf" : ""), "data-node": i,
      transform: `translate(${n.x},${n.y})` }, nodeLayer, true);
    el("rect", { width: BOX_W, height: BOX_H }, g, true);
    const title = el("text", { x: 8, y: 18 }, g, true);
    title.textContent = n.label.length > 19 ? n.label.slice(0, 18) + "…" : n.label;
    const sub = el("text", { x: 8, y: 36, class: "sub" }, g, true);
    sub.textContent = n.members > 1 ? `${n.members} tensors` : shape(n.shape) || "()";
    g.addEventListener("mousemove", (ev) => showTip(ev, i));
    g.addEventListener("mouseleave", hideTip);
    return g;
  });

  // ------------------------------------------------------------------ state after `applied` steps
  function stateAt(k) {
    const popped = new Set(), held = new Map();
    if (steps.length) held.set(steps[0].node, steps[0].g);  // the seed dL/dL at the output
    for (let s = 0; s < k; s++) {
      const step = steps[s];
      popped.add(step.node);
      held.set(step.node, step.g);
      for (const inp of step.inputs) {
        if (inp.node !== null && inp.grad) held.set(inp.node, inp.total || inp.reduced || inp.grad);
      }
    }
    return { popped, held };
  }

  function render() {
    const { popped, held } = stateAt(applied);
    const step = applied ? steps[applied - 1] : null;
    const receiving = new Set(step ? step.inputs.filter((i) => i.grad && i.node !== null).map((i) => i.node) : []);
    boxes.forEach((g, i) => {
      let cls = "node" + (nodes[i].leaf ? " leaf" : "");
      if (step && step.node === i) cls += " now";
      else if (receiving.has(i)) cls += " receive";
      else if (popped.has(i)) cls += " done";
      else if (held.has(i)) cls += " pending";
      g.setAttribute("class", cls);
    });
    flowLayer.replaceChildren();
    if (step) {
      for (const i of receiving) {
        if (i !== step.node) {
          const path = el("path", { class: "edge flow", d: curve(i, step.node) }, flowLayer, true);
          path.setAttribute("marker-start", "url(#arrow)");
          path.removeAttribute("marker-end");
        }
      }
    }
    if (step) follow(step.node); else if (steps.length) follow(steps[0].node);
    document.getElementById("counter").textContent = `step ${applied} of ${steps.length}`;
    renderPanel(step, held);
    renderLog();
    try { history.replaceState(null, "", "#step=" + applied); } catch (e) { /* file:// quirks */ }
  }

  function renderPanel(step, held) {
    const box = document.getElementById("current");
    box.replaceChildren();
    if (!step) {
      box.dataset.step = 0;
      const first = steps[0];
      el("p", {}, box).textContent = steps.length
        ? `${steps.length} VJP steps over ${DATA.tensors} tensors${DATA.collapsed ? " (drawn as layers)" : ""}. ` +
          `The sweep starts at ${nodeName(first.node)} with the seed gradient dL/dL:`
        : "This sweep applied no VJP.";
      if (first) el("pre", { class: "mono" }, box).textContent = summary(first.g);
      el("p", {}, box).textContent = "Press ▶ (or →) to pop the first tensor.";
      return;
    }
    Object.assign(box.dataset, { step: applied, op: step.op, node: step.node, gNorm: String(step.g.norm),
      gHead: JSON.stringify(step.g.head) });
    const p = el("p", {}, box);
    p.append(`step ${applied} of ${steps.length}: pop `);
    el("strong", {}, p).textContent = nodeName(step.node);
    p.append(" and apply the VJP of ");
    el("span", { class: "op" }, p).textContent = step.op;
    const table = el("table", {}, box);
    const row = (label, value, cls) => {
      const tr = el("tr", {}, table);
      el("th", {}, tr).textContent = label;
      const td = el("td", { class: cls || "" }, tr);
      if (typeof value === "string") td.textContent = value; else td.append(value);
      return td;
    };
    row("upstream ∂L/∂out", summary(step.g), "mono").style.whiteSpace = "pre-wrap";
    row("VJP", `${step.op}: g ${shape(step.out_shape)} → ` +
      step.inputs.map((i) => shape(i.shape)).join(", "), "mono");
    if (step.created_at) row("created at", step.created_at, "mono");
    step.inputs.forEach((inp, position) => {
      const td = row(`input ${position}`, "", "");
      el("div", { class: "mono" }, td).textContent = nodeName(inp.node);
      if (!inp.grad) { el("div", {}, td).textContent = "needs no gradient"; return; }
      const got = el("div", { class: "mono input-grad", "data-position": position,
        "data-norm": String(inp.grad.norm) }, td);
      got.style.whiteSpace = "pre-wrap";
      got.textContent = "receives " + summary(inp.grad);
      if (inp.reduced) {
        el("div", { class: "note broadcast" }, td).textContent =
          `broadcasting undone: ${shape(inp.grad.shape)} summed to ${shape(inp.shape)}, |·| ${fmt(inp.reduced.norm)}`;
      }
      if (inp.accumulated) {
        el("div", { class: "note accumulate" }, td).textContent =
          "accumulated: added to the gradient it already had from another consumer" +
          (inp.total ? `; total now |·| ${fmt(inp.total.norm)}` : "");
      }
    });
  }

  function renderLog() {
    const log = document.getElementById("log");
    log.replaceChildren();
    for (let s = 0; s < applied; s++) {
      const step = steps[s];
      const li = el("li", { "data-index": s, "data-op": step.op, "data-node": step.node,
        "data-g-norm": String(step.g.norm), class: s === applied - 1 ? "last" : "" }, log);
      li.textContent = `${step.op} ${shape(step.out_shape)}  |g| ${fmt(step.g.norm)}`;
    }
  }

  // ------------------------------------------------------------------ hover
  const tip = document.getElementById("tooltip");
  function showTip(ev, i) {
    const n = nodes[i], { held } = stateAt(applied);
    const lines = [nodeName(i), n.op ? `made by: ${n.op}` : (n.members > 1 ? "" : "leaf")];
    if (n.value) lines.push("value:    " + summary(n.value));
    lines.push("gradient: " + (held.has(i) ? summary(held.get(i)) : "none yet"));
    tip.textContent = lines.filter(Boolean).join("\n");
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 470) + "px";
    tip.style.top = ev.clientY + 14 + "px";
  }
  function hideTip() { tip.hidden = true; }

  // ------------------------------------------------------------------ controls
  function go(k) { applied = Math.max(0, Math.min(steps.length, k)); render(); }
  function stop() { if (timer) { clearInterval(timer); timer = null; } document.getElementById("play").textContent = "play"; }
  function play() {
    if (timer) return stop();
    if (applied >= steps.length) go(0);
    document.getElementById("play").textContent = "pause";
    timer = setInterval(() => { if (applied >= steps.length) stop(); else go(applied + 1); }, 700);
  }
  document.getElementById("first").onclick = () => { stop(); go(0); };
  document.getElementById("prev").onclick = () => { stop(); go(applied - 1); };
  document.getElementById("next").onclick = () => { stop(); go(applied + 1); };
  document.getElementById("last").onclick = () => { stop(); go(steps.length); };
  document.getElementById("play").onclick = play;
  document.getElementById("zoom-in").onclick = () => { zoom = Math.min(2, zoom * 1.25); applyZoom(); };
  document.getElementById("zoom-out").onclick = () => { zoom = Math.max(0.05, zoom / 1.25); applyZoom(); };
  document.addEventListener("keydown", (ev) => {
    const keys = { ArrowRight: () => go(applied + 1), ArrowLeft: () => go(applied - 1),
      Home: () => go(0), End: () => go(steps.length), " ": play };
    if (keys[ev.key]) { ev.preventDefault(); if (ev.key !== " ") stop(); keys[ev.key](); }
  });
  function fromHash() {
    const m = /step=(\d+)/.exec(location.hash);
    go(m ? parseInt(m[1], 10) : 0);
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
