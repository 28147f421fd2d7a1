// Small SVG charts for the dashboard, drawn by hand: a few bars and lines need no library to download.
"use strict";
const Charts = (function () {
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(width, height, label) {
    return el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  }
  // Stacked bars of early / on time / late shares, one per row: rows = [{label, early, on_time, late, scheduled}].
  function stackedShares(target, rows, label) {
    const W = 900, barH = 18, gap = 6, left = 120, H = Math.max(40, rows.length * (barH + gap) + 30);
    const s = svg(W, H, label);
    rows.forEach((r, i) => {
      const y = 10 + i * (barH + gap);
      s.append(el("text", { x: left - 6, y: y + barH - 4, "text-anchor": "end" }, r.label));
      let x = left;
      for (const part of ["early", "on_time", "late"]) {
        const share = r.scheduled ? r[part] / r.scheduled : 0;
        const w = share * (W - left - 60);
        const rect = el("rect", { x, y, width: w, height: barH, class: "bar-" + part.replace("_", "-") });
        rect.append(el("title", {}, `${r.label}: ${part.replace("_", " ")} ${(share * 100).toFixed(1)}%`));
        s.append(rect);
        x += w;
      }
      const onTime = r.scheduled ? (100 * r.on_time / r.scheduled).toFixed(0) + "%" : "–";
      s.append(el("text", { x: W - 55, y: y + barH - 4 }, onTime));
    });
    target.replaceChildren(s, legend());
  }
  function legend() {
    const p = document.createElement("p");
    p.className = "legend";
    p.innerHTML = '<svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" class="bar-early"/></svg> early ' +
      '<svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" class="bar-on-time"/></svg> on time ' +
      '<svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" class="bar-late"/></svg> late';
    return p;
  }
  // Vertical bars: values = [{label, value, title}], value in [0, max].
  function bars(target, values, max, label, cls) {
    const W = 900, H = 220, left = 40, bottom = 30, top = 10;
    const s = svg(W, H, label);
    const bw = (W - left - 10) / Math.max(1, values.length);
    for (const frac of [0, 0.5, 1]) {
      const y = H - bottom - frac * (H - bottom - top);
      s.append(el("line", { x1: left, x2: W - 10, y1: y, y2: y, class: "grid" }));
      s.append(el("text", { x: left - 4, y: y + 4, "text-anchor": "end" }, label.includes("%") ? `${frac * 100}%` : Math.round(frac * max)));
    }
    values.forEach((v, i) => {
      const h = max ? (v.value / max) * (H - bottom - top) : 0;
      const rect = el("rect", { x: left + i * bw + 1, y: H - bottom - h, width: Math.max(1, bw - 2), height: h, class: cls });
      rect.append(el("title", {}, v.title));
      s.append(rect);
      if (values.length <= 30 || i % Math.ceil(values.length / 30) === 0) {
        s.append(el("text", { x: left + i * bw + bw / 2, y: H - bottom + 14, "text-anchor": "middle" }, v.label));
      }
    });
    target.replaceChildren(s);
  }
  // Time-space chart: x = time, y = distance along the route; each trip a scheduled and an actual line.
  function marey(target, data, formatTime) {
    const W = 900, H = 520, left = 150, bottom = 30, top = 10, right = 10;
    const s = svg(W, H, `Time-space chart of route ${data.route_id} on ${data.date}`);
    const times = data.trips.flatMap((t) => t.scheduled.concat(t.actual).map((p) => p[1]));
    const maxD = Math.max(1, ...data.stops.map((st) => st.distance_m));
    if (!times.length) { target.replaceChildren(document.createTextNode("No trips that day.")); return; }
    const t0 = Math.min(...times), t1 = Math.max(...times);
    const x = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * (W - left - right);
    const y = (d) => top + (d / maxD) * (H - top - bottom);
    const step = data.stops.length > 25 ? Math.ceil(data.stops.length / 25) : 1;
    data.stops.forEach((st, i) => {
      if (i % step) return;
      s.append(el("line", { x1: left, x2: W - right, y1: y(st.distance_m), y2: y(st.distance_m), class: "grid" }));
      s.append(el("text", { x: left - 4, y: y(st.distance_m) + 4, "text-anchor": "end" }, st.name.slice(0, 22)));
    });
    for (let hour = Math.ceil(t0 / 3600) * 3600; hour <= t1; hour += 3600) {
      s.append(el("line", { x1: x(hour), x2: x(hour), y1: top, y2: H - bottom, class: "grid" }));
      s.append(el("text", { x: x(hour), y: H - bottom + 14, "text-anchor": "middle" }, formatTime(hour)));
    }
    const path = (points) => points.map((p, i) => `${i ? "L" : "M"}${x(p[1]).toFixed(1)},${y(p[0]).toFixed(1)}`).join("");
    for (const trip of data.trips) {
      if (trip.scheduled.length > 1) s.append(el("path", { d: path(trip.scheduled), class: "line-scheduled" }));
      if (trip.actual.length > 1) {
        const line = el("path", { d: path(trip.actual), class: "line-actual", "data-trip": trip.trip_id });
        line.append(el("title", {}, trip.trip_id));
        s.append(line);
      }
    }
    target.replaceChildren(s);
  }
  return { stackedShares, bars, marey };
})();
