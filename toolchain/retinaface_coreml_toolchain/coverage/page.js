// Draws each view of the embedded record as SVG: no network, no library.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const CPU_COLOUR = "#e0001b";
  // Partition colours: distinct, none of them red, readable under white text.
  const PALETTE = ["#1f6fd1", "#17915a", "#7b3fc4", "#0d8b9c", "#b8860b", "#4b5563",
    "#c2407a", "#2f8f2f", "#5a56d6", "#8a6d3b", "#00838f", "#6d4c41"];
  const W = 128, H = 26;
  const NS = "http://www.w3.org/2000/svg";

  function colour(part) { return part < 0 ? CPU_COLOUR : PALETTE[part % PALETTE.length]; }
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }
  function el(tag, attrs, html) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (html !== undefined) e.innerHTML = html;
    return e;
  }
  function pct(x) { return x === null || x === undefined ? "n/a" : (Math.floor(x * 10000) / 100).toFixed(2) + "%"; }
  function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "\u2026" : s; }

  function renderHeader(h) {
    const head = el("header");
    head.appendChild(el("h1", {}, esc(h.title)));
    head.appendChild(el("div", { class: "facts" },
      h.facts.map(f => `<span>${esc(f[0])}: <b>${esc(f[1])}</b></span>`).join("")));
    for (const n of h.notes) head.appendChild(el("p", { class: "note" }, "note: " + esc(n)));
    document.body.appendChild(head);
  }

  function View(view, root) {
    this.view = view;
    const nodes = view.nodes;
    const s = view.summary;
    const sec = el("section", { class: "view", "data-title": view.title });
    sec.appendChild(el("h2", {}, esc(view.title)));
    sec.appendChild(el("div", { class: "stats" },
      `<span>nodes <b data-k="nodes">${s.nodes}</b></span>` +
      `<span>supported <b data-k="supported">${s.supported}</b> (${pct(s.nodes ? s.supported / s.nodes : 1)})</span>` +
      `<span>partitions <b data-k="partitions">${s.partitions}</b></span>` +
      `<span>CPU nodes <b data-k="cpu">${nodes.filter(n => n.part < 0).length}</b></span>` +
      `<span>MACs on CoreML <b data-k="macs">${pct(s.mac_share)}</b></span>`));
    const legend = s.partition_sizes.map((n, k) =>
      `<span><i style="background:${colour(k)}"></i>partition ${k + 1} (${n})</span>`);
    legend.push(`<span><i style="background:${CPU_COLOUR}"></i>CPU</span>`);
    legend.push(`<span><i class="crossing"></i>copy between CPU and CoreML</span>`);
    if (view.mark_label) legend.push(`<span><i class="marked"></i>${esc(view.mark_label)}</span>`);
    if (view.units.some(u => u.length > 1)) legend.push(`<span>dashed box: a chain of supported nodes (click to expand)</span>`);
    sec.appendChild(el("div", { class: "legend" }, legend.join("")));
    const bar = el("div", { class: "toolbar" });
    this.toggle = el("button", { type: "button", "data-action": "toggle" });
    const fit = el("button", { type: "button", "data-action": "fit" }, "Fit");
    const top = el("button", { type: "button", "data-action": "top" }, "Top");
    bar.append(this.toggle, fit, top);
    sec.appendChild(bar);
    const body = el("div", { class: "body" });
    this.canvas = el("div", { class: "canvas" });
    this.side = el("div", { class: "side" });
    body.append(this.canvas, this.side);
    sec.appendChild(body);
    root.appendChild(sec);
    this.collapsed = view.collapse_default;
    this.toggle.onclick = () => { this.collapsed = !this.collapsed; this.draw(); };
    fit.onclick = () => this.fit();
    top.onclick = () => this.top();
    this.bindPanZoom();
    this.canvas.addEventListener("click", e => {
      if (this.moved) return;
      const g = e.target.closest(".node");
      if (g) this.select(+g.dataset.unit);
    });
    this.showSummary();
    this.draw();
  }

  View.prototype.layout = function () {
    const v = this.view;
    if (this.collapsed) return { placed: v.collapsed, units: v.units };
    if (!v.singles) v.singles = v.nodes.map(n => [n.i]);
    return { placed: v.full, units: v.singles };
  };

  View.prototype.draw = function () {
    const v = this.view, { placed, units } = this.layout();
    this.units = units;
    this.placed = placed;
    this.toggle.textContent = this.collapsed ? "Expand all chains" : "Collapse chains";
    this.toggle.disabled = !v.units.some(u => u.length > 1);
    const partOfUnit = units.map(u => v.nodes[u[0]].part);
    const parts = [];
    for (const [s, d, pts] of placed.edges) {
      const cls = partOfUnit[s] !== partOfUnit[d] ? "edge crossing" : "edge";
      parts.push(`<path class="${cls}" d="M${pts.map(p => p[0] + "," + p[1]).join("L")}"/>`);
    }
    units.forEach((u, k) => {
      const n = v.nodes[u[0]], [x, y] = placed.xy[k];
      const chain = u.length > 1;
      const cls = ["node", n.part < 0 ? "cpu" : "coreml", chain ? "chain" : "",
        u.some(i => v.nodes[i].marked) ? "marked" : ""].join(" ");
      const label = chain ? `${u.length}\u00d7 ${n.op}\u2026${v.nodes[u[u.length - 1]].op}` : n.op;
      const title = chain ? `${u.length} nodes in partition ${n.part + 1}` : `${n.op} ${n.name}`;
      parts.push(`<g class="${cls}" data-unit="${k}" data-index="${u.join(" ")}" data-count="${u.length}"` +
        ` data-part="${n.part}"${n.part < 0 ? ` data-name="${esc(n.name)}"` : ""}` +
        ` transform="translate(${x - W / 2},${y - H / 2})"><title>${esc(title)}</title>` +
        `<rect width="${W}" height="${H}" rx="5" fill="${colour(n.part)}"/>` +
        `<text x="${W / 2}" y="${H / 2}">${esc(short(label, 21))}</text></g>`);
    });
    this.canvas.innerHTML = `<svg xmlns="${NS}" viewBox="0 0 10 10" preserveAspectRatio="xMidYMin meet">` +
      `<g>${parts.join("")}</g></svg>`;
    this.svg = this.canvas.firstChild;
    if (this.box) this.top();  // the first view box waits until every panel is in place
  };

  View.prototype.setBox = function (x, y, w) {
    const r = this.canvas.getBoundingClientRect();
    const h = w * (r.height || 1) / (r.width || 1);
    this.box = [x, y, w, h];
    this.svg.setAttribute("viewBox", `${x} ${y} ${w} ${h}`);
  };
  // Readable start: the top of the graph at a scale where a node's text can be read.
  View.prototype.top = function () {
    const cw = this.canvas.getBoundingClientRect().width || 800;
    const w = Math.min(Math.max(this.placed.width, cw), cw / 0.6);  // at least 60 % scale
    this.setBox((this.placed.width - w) / 2, 0, w);
  };
  View.prototype.fit = function () {
    const r = this.canvas.getBoundingClientRect();
    const p = this.placed, aspect = (r.width || 1) / (r.height || 1);
    this.setBox(0, 0, Math.max(p.width, p.height * aspect));
  };
  View.prototype.centreOn = function (x, y) {
    const [, , w, h] = this.box;
    this.setBox(x - w / 2, y - h / 2, w);
  };

  View.prototype.bindPanZoom = function () {
    const c = this.canvas;
    c.addEventListener("wheel", e => {
      e.preventDefault();
      const r = c.getBoundingClientRect(), [x, y, w, h] = this.box;
      const f = Math.exp(e.deltaY * 0.0015);
      const px = x + (e.clientX - r.left) / r.width * w, py = y + (e.clientY - r.top) / r.height * h;
      const nw = w * f;
      this.setBox(px - (px - x) * f, py - (py - y) * f, nw);
    }, { passive: false });
    let start = null;
    c.addEventListener("mousedown", e => { start = [e.clientX, e.clientY, this.box.slice()]; this.moved = false; });
    window.addEventListener("mousemove", e => {
      if (!start) return;
      const dx = e.clientX - start[0], dy = e.clientY - start[1];
      if (Math.abs(dx) + Math.abs(dy) > 3) { this.moved = true; c.classList.add("dragging"); }
      if (!this.moved) return;
      const r = c.getBoundingClientRect(), [x, y, w] = start[2];
      this.setBox(x - dx / r.width * w, y - dy / r.width * w, w);
    });
    window.addEventListener("mouseup", () => { start = null; c.classList.remove("dragging"); });
  };

  View.prototype.showSummary = function () {
    const v = this.view;
    const cpu = v.nodes.filter(n => n.part < 0);
    let html = `<h3>CPU nodes (${cpu.length})</h3>`;
    html += cpu.length ? "<ul>" + cpu.map(n => `<li><a data-goto="${n.i}">${esc(n.op)} ${esc(short(n.name, 40))}</a></li>`).join("") + "</ul>"
      : "<p>none: every node runs on CoreML.</p>";
    html += `<p>Click a node for its op, name, input shapes and, on the CPU, the rule that rejected it.</p>`;
    this.side.innerHTML = `<div class="detail"></div><div class="cpu-list">${html}</div>`;
    this.side.addEventListener("click", e => {
      const a = e.target.closest("a[data-goto]");
      if (a) this.goto(+a.dataset.goto);
    });
  };

  // Show node ``i`` in the current drawing (expanding chains if it is inside one) and select it.
  View.prototype.goto = function (i) {
    let k = this.units.findIndex(u => u.includes(i));
    if (this.units[k].length > 1) { this.collapsed = false; this.draw(); k = i; }
    this.select(k, i);
  };

  View.prototype.select = function (k, only) {
    const v = this.view, u = this.units[k];
    if (u.length > 1) {
      // A click on a chain expands it: the full drawing, centred on the chain, its nodes lit.
      this.collapsed = false;
      this.draw();
      const [x, y] = this.placed.xy[u[0]];
      this.centreOn(x, y + (u.length - 1) * 28);
      for (const i of u) this.svg.querySelector(`.node[data-unit="${i}"]`).classList.add("lit");
      this.side.querySelector(".detail").innerHTML =
        `<h3>Chain of ${u.length} supported nodes, partition ${v.nodes[u[0]].part + 1}</h3><ul>` +
        u.map(i => `<li><a data-goto="${i}">${esc(v.nodes[i].op)} ${esc(short(v.nodes[i].name, 40))}</a></li>`).join("") + "</ul>";
      return;
    }
    for (const g of this.svg.querySelectorAll(".node.selected")) g.classList.remove("selected");
    const g = this.svg.querySelector(`.node[data-unit="${k}"]`);
    g.classList.add("selected");
    if (only !== undefined) { const [x, y] = this.placed.xy[k]; this.centreOn(x, y); }
    const n = v.nodes[u[0]];
    const where = n.part < 0 ? `<b style="color:${CPU_COLOUR}">CPU</b>` : `CoreML partition ${n.part + 1}`;
    let html = `<h3>${esc(n.op)}</h3><div>name: <code>${esc(n.name)}</code></div>` +
      `<div>node index: ${n.i}</div><div>runs on: ${where}</div>`;
    if (n.marked) html += `<div><b>${esc(v.mark_label)}</b></div>`;
    if (n.part < 0) {
      html += `<div class="reason" data-role="reason">${esc(n.reason || "")}` +
        (n.code ? ` <small>(${esc(n.code)})</small>` : "") + "</div>";
    }
    html += "<h3>inputs</h3><ul>" + n.inputs.map(t =>
      `<li><code>${esc(t[0])}</code>: ${esc(t[1])} ${esc(t[2])}</li>`).join("") + "</ul>";
    this.side.querySelector(".detail").innerHTML = html;
  };

  renderHeader(DATA.header);
  const main = el("main");
  document.body.appendChild(main);
  const views = DATA.views.map(v => new View(v, main));
  for (const v of views) v.top();  // now each canvas has its final width
  window.addEventListener("resize", () => { for (const v of views) v.setBox(v.box[0], v.box[1], v.box[2]); });
  document.body.dataset.ready = String(Math.round(performance.now()));
})();
