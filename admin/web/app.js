// braid dashboard: polls /status.json and draws each link's throughput
// and share on canvases. Plain JavaScript, no dependencies: it is
// embedded in the binary and must work on an offline router.
"use strict";

(function () {
  const palette = ["#3572c6", "#2e9d4f", "#d08a00", "#a04fc0", "#c63b3b", "#1b9aaa", "#7a6a3a", "#e0609a"];
  const maxSamples = 300;
  let samples = []; // {time: Date, links: {name: {tx, rx, share, state}}}
  let colors = new Map(); // link name -> colour, stable while the page lives
  let addrs = new Map(); // link name -> path description
  let intervalMs = 1000;

  let nextColor = 0;
  function colorOf(name) {
    if (!colors.has(name)) colors.set(name, palette[nextColor++ % palette.length]);
    return colors.get(name);
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "style") Object.assign(e.style, v); // CSSOM: allowed by the page's CSP, inline style attributes are not
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function fmtMbps(v) {
    if (!v) return "0";
    if (v < 10) return v.toFixed(2);
    if (v < 100) return v.toFixed(1);
    return v.toFixed(0);
  }

  function fmtRTT(ms) {
    if (ms >= 1000) return (ms / 1000).toFixed(1) + " s";
    return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
  }

  function fmtBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function addSample(time, links) {
    const m = {};
    for (const l of links) {
      m[l.name] = { tx: l.tx_mbps || 0, rx: l.rx_mbps || 0, share: l.share || 0, state: l.state };
      colorOf(l.name);
    }
    samples.push({ time: new Date(time), links: m });
    if (samples.length > maxSamples) samples = samples.slice(samples.length - maxSamples);
    // Forget links gone from the whole window (an exit names links by the
    // client's address and port, so they come and go).
    const live = new Set(samples.flatMap(s => Object.keys(s.links)));
    for (const name of [...colors.keys()]) if (!live.has(name)) { colors.delete(name); addrs.delete(name); }
  }

  function renderTable(st) {
    const tbody = document.querySelector("#links tbody");
    const rows = [];
    for (const l of st.links) {
      if (l.addr) addrs.set(l.name, l.addr);
      const name = el("td", { class: "name" }, el("span", { class: "swatch", style: { background: colorOf(l.name) } }), l.name);
      if (l.addr) name.append(el("span", { class: "addr" }, l.addr));
      const state = l.state + (l.backup ? " (backup)" : "");
      const share = el("td", { class: "share" },
        el("span", { class: "bar", style: { width: Math.round(l.share * 60) + "px", background: colorOf(l.name) } }),
        Math.round(l.share * 100) + "%");
      rows.push(el("tr", { "data-link": l.name, "data-state": l.state },
        name,
        el("td", { class: "state state-" + l.state }, state),
        el("td", {}, l.state === "down" ? "-" : fmtRTT(l.rtt_ms)),
        el("td", {}, fmtMbps(l.tx_mbps)),
        el("td", {}, fmtMbps(l.rx_mbps)),
        share,
        el("td", {}, fmtBytes(l.resent_bytes)),
        el("td", {}, l.stalls),
        el("td", {}, st.role === "client" ? l.redials : "-")));
    }
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "9" }, "no links")));
    tbody.replaceChildren(...rows);

    document.getElementById("role").textContent = st.role;
    const counts = {};
    for (const l of st.links) counts[l.state] = (counts[l.state] || 0) + 1;
    const parts = ["up", "stalled", "down"].filter(s => counts[s]).map(s => counts[s] + " " + s);
    let summary = "links: " + (parts.join(", ") || "none") +
      " · TX " + fmtMbps(st.tx_mbps) + " Mbit/s · RX " + fmtMbps(st.rx_mbps) + " Mbit/s · sessions: " + st.sessions.length;
    if (st.socks) summary += " · SOCKS " + st.socks.active + " active, " + st.socks.total + " total";
    const s = document.getElementById("summary");
    s.textContent = summary;
    s.className = "";
  }

  function renderLegend() {
    const items = [];
    for (const [name, color] of colors) {
      const li = el("li", { "data-link": name }, el("span", { class: "swatch", style: { background: color } }), name);
      if (addrs.has(name)) li.append(el("span", { class: "addr" }, addrs.get(name)));
      items.push(li);
    }
    document.getElementById("legend").replaceChildren(...items);
  }

  // setup sizes a canvas for the device's pixel ratio and returns its
  // context and plot box.
  function setup(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(w * ratio)) { canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio); }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = getComputedStyle(document.body).color;
    return { ctx, box: { x: 44, y: 8, w: w - 52, h: h - 26 } };
  }

  function axes(ctx, box, top, label) {
    ctx.strokeStyle = "rgba(128,128,128,.35)";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const y = box.y + box.h - (box.h * i) / 4;
      ctx.beginPath(); ctx.moveTo(box.x, y); ctx.lineTo(box.x + box.w, y); ctx.stroke();
      ctx.fillText(label((top * i) / 4), box.x - 4, y);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    const span = Math.round((maxSamples * intervalMs) / 1000);
    ctx.fillText("-" + span + " s", box.x, box.y + box.h + 4);
    ctx.textAlign = "right";
    ctx.fillText("now", box.x + box.w, box.y + box.h + 4);
  }

  function xOf(box, i) {
    return box.x + box.w - ((samples.length - 1 - i) * box.w) / (maxSamples - 1);
  }

  function drawThroughput() {
    const { ctx, box } = setup(document.getElementById("throughput"));
    let top = 0;
    for (const s of samples) for (const v of Object.values(s.links)) top = Math.max(top, v.tx + v.rx);
    top = niceTop(top);
    // What was drawn, for tests and the curious: canvases keep no DOM.
    ctx.canvas.dataset.samples = samples.length;
    ctx.canvas.dataset.top = top;
    axes(ctx, box, top, v => String(Number(v.toPrecision(3))));
    ctx.lineWidth = 1.8;
    for (const [name, color] of colors) {
      ctx.strokeStyle = color;
      ctx.beginPath();
      let pen = false;
      samples.forEach((s, i) => {
        const v = s.links[name];
        if (!v) { pen = false; return; }
        const x = xOf(box, i), y = box.y + box.h - ((v.tx + v.rx) / top) * box.h;
        if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        pen = true;
      });
      ctx.stroke();
    }
  }

  function drawShare() {
    const { ctx, box } = setup(document.getElementById("share"));
    axes(ctx, box, 1, v => Math.round(v * 100) + "%");
    const names = [...colors.keys()];
    const w = box.w / (maxSamples - 1);
    samples.forEach((s, i) => {
      let acc = 0;
      const x = xOf(box, i) - w;
      for (const name of names) {
        const v = s.links[name];
        if (!v || !v.share) continue;
        ctx.fillStyle = colors.get(name);
        const h = v.share * box.h;
        ctx.fillRect(x, box.y + box.h - acc - h, Math.max(w, 1), h);
        acc += h;
      }
    });
  }

  // niceTop rounds a chart's maximum up to 1, 2 or 5 times a power of ten.
  function niceTop(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function draw() {
    renderLegend();
    drawThroughput();
    drawShare();
  }

  function showError(msg) {
    const s = document.getElementById("summary");
    s.textContent = msg;
    s.className = "error";
  }

  async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store" });
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  let lastTime = "";
  async function poll() {
    try {
      const st = await getJSON("status.json");
      renderTable(st);
      if (st.time !== lastTime) { // the sampler may not have moved on yet
        lastTime = st.time;
        addSample(st.time, st.links);
      }
      draw();
      document.getElementById("updated").textContent = "updated " + new Date(st.time).toLocaleTimeString();
    } catch (e) {
      showError("cannot reach braid: " + e.message);
    }
    setTimeout(poll, intervalMs);
  }

  async function start() {
    try {
      const h = await getJSON("history.json");
      if (h.interval_s > 0) intervalMs = h.interval_s * 1000;
      for (const p of h.samples) { addSample(p.time, p.links); lastTime = p.time; }
    } catch (e) {
      showError("cannot reach braid: " + e.message);
    }
    poll();
  }

  window.addEventListener("resize", draw);
  start();
})();
