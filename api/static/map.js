// The operators' fleet map: routes and stops from the api, buses moving live from /ws/fleet.
"use strict";
(async function () {
  const STALE_AFTER_S = 300;
  const map = L.map("map", { preferCanvas: true, zoomControl: true }).setView([0, 0], 2);
  const config = await (await fetch("/api/config")).json();
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: config.tile_attribution || "" }).addTo(map);
  }
  const routeNames = {};
  const routes = await (await fetch("/api/routes.geojson")).json();
  const routeLayer = L.geoJSON(routes, {
    style: (f) => ({ color: f.properties.color || "#555", weight: 3, opacity: 0.7 }),
    onEachFeature: (f, layer) => {
      routeNames[f.properties.route_id] = f.properties.short_name || f.properties.route_id;
      layer.bindTooltip(text(f.properties.short_name) + " " + text(f.properties.long_name), { sticky: true });
    },
  }).addTo(map);
  if (routeLayer.getLayers().length) map.fitBounds(routeLayer.getBounds(), { padding: [20, 20] });
  const stops = await (await fetch("/api/stops.geojson")).json();
  L.geoJSON(stops, {
    pointToLayer: (f, latlng) => L.circleMarker(latlng, { radius: 3, color: "#333", weight: 1, fillColor: "#fff", fillOpacity: 1 }),
    onEachFeature: (f, layer) => layer.bindPopup(() => stopPopup(f.properties)),
  }).addTo(map);

  const markers = new Map(); // vehicle_id -> {marker, vehicle}
  const statusEl = document.getElementById("status");
  const countEl = document.getElementById("count");
  let serverOffset = 0; // server clock minus ours, seconds

  function text(value) { return value === null || value === undefined ? "" : String(value); }
  function delayClass(v) {
    if (Date.now() / 1000 + serverOffset - v.timestamp > STALE_AFTER_S) return "stale";
    if (v.delay_s === null || v.delay_s === undefined) return "unknown";
    if (v.delay_s > 300) return "late";
    if (v.delay_s < -60) return "early";
    return "on-time";
  }
  const COLORS = { "on-time": "#1a7f37", late: "#c62828", early: "#1565c0", unknown: "#6e6e6e", stale: "#ffffff" };
  function style(v) {
    const cls = delayClass(v);
    return { radius: 7, weight: 2, color: cls === "stale" ? "#999" : "#fff", fillColor: COLORS[cls], fillOpacity: 1 };
  }
  function describeDelay(s) {
    if (s === null || s === undefined) return "unknown";
    const m = Math.round(Math.abs(s) / 60);
    if (m === 0) return "on time";
    return m + " min " + (s > 0 ? "late" : "early");
  }
  function popup(v) {
    const dl = document.createElement("dl");
    dl.className = "vehicle-popup";
    const age = Math.max(0, Math.round(Date.now() / 1000 + serverOffset - v.timestamp));
    for (const [term, value] of [
      ["Vehicle", v.vehicle_id],
      ["Route", v.route_short_name || v.route_id || "unassigned"],
      ["Trip", (v.trip_id || "none") + (v.headsign ? " → " + v.headsign : "")],
      ["Delay", describeDelay(v.delay_s)],
      ["Status", v.status],
      ["Last update", new Date(v.timestamp * 1000).toLocaleTimeString() + " (" + age + " s ago)"],
    ]) {
      const dt = document.createElement("dt"); dt.textContent = term;
      const dd = document.createElement("dd"); dd.textContent = text(value);
      dl.append(dt, dd);
    }
    return dl;
  }
  function stopPopup(p) {
    const div = document.createElement("div");
    const a = document.createElement("a");
    a.href = "/stops/" + encodeURIComponent(p.stop_id);
    a.textContent = p.name + " — arrivals";
    div.append(a);
    return div;
  }
  function upsert(v) {
    const entry = markers.get(v.vehicle_id);
    if (entry) {
      entry.vehicle = v;
      entry.marker.setLatLng([v.latitude, v.longitude]).setStyle(style(v));
    } else {
      const marker = L.circleMarker([v.latitude, v.longitude], style(v)).addTo(map);
      const record = { marker, vehicle: v };
      marker.bindPopup(() => popup(record.vehicle));
      marker.bindTooltip(() => text(record.vehicle.route_short_name || record.vehicle.vehicle_id));
      markers.set(v.vehicle_id, record);
    }
  }
  function onMessage(msg) {
    serverOffset = msg.server_time - Date.now() / 1000;
    if (msg.type === "snapshot") {
      for (const { marker } of markers.values()) marker.remove();
      markers.clear();
    }
    for (const v of msg.vehicles) upsert(v);
    for (const id of msg.removed || []) {
      const entry = markers.get(id);
      if (entry) { entry.marker.remove(); markers.delete(id); }
    }
    countEl.textContent = markers.size + " buses";
  }

  // The problems panel: what an operator should act on now, refreshed every few seconds.
  const PROBLEM_LABELS = { bunching: "Bunching", gap: "Gap", stale: "Stale", off_route: "Off route" };
  const problemsEl = document.getElementById("problems");
  const problemsCountEl = document.getElementById("problems-count");
  async function refreshProblems() {
    let body;
    try { body = await (await fetch("/api/fleet/problems")).json(); } catch { return; }
    const items = (body.problems || []).map((p) => {
      const li = document.createElement("li");
      li.className = "problem problem-" + p.kind;
      const button = document.createElement("button");
      button.type = "button";
      const kind = document.createElement("strong");
      kind.textContent = PROBLEM_LABELS[p.kind] || p.kind;
      const route = routeNames[p.route_id] || p.route_id || "no route";
      button.append(kind, ` · ${route} · ${p.vehicle_ids.join(", ")} — ${p.detail}`);
      button.addEventListener("click", () => {
        map.setView([p.latitude, p.longitude], Math.max(map.getZoom(), 15));
        const entry = markers.get(p.vehicle_ids[0]);
        if (entry) entry.marker.openPopup();
      });
      li.append(button);
      return li;
    });
    problemsEl.replaceChildren(...items);
    problemsCountEl.textContent = items.length ? `(${items.length})` : "(none)";
  }
  refreshProblems();
  setInterval(refreshProblems, 10000);
  // Restyle every so often: a bus that stops reporting turns stale without any message.
  setInterval(() => { for (const { marker, vehicle } of markers.values()) marker.setStyle(style(vehicle)); }, 15000);
  const routeFilter = new URLSearchParams(location.search).get("route_id");
  const path = "/ws/fleet" + (routeFilter ? "?route_id=" + encodeURIComponent(routeFilter) : "");
  const LABELS = { connecting: "connecting…", live: "live", reconnecting: "connection lost, reconnecting…" };
  liveSocket(path, onMessage, (state) => { statusEl.textContent = LABELS[state] || state; });
})();
