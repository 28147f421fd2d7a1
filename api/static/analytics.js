// The analysts' dashboard: punctuality from /api/analytics/* (needs a key with the "analyst" role).
"use strict";
(async function () {
  const $ = (id) => document.getElementById(id);
  const config = await (await fetch("/api/config")).json();
  const zone = config.timezone;
  $("zone").textContent = `(${zone})`;
  const routes = (await (await fetch("/api/routes")).json()).routes;
  $("route").replaceChildren(...routes.map((r) => {
    const o = document.createElement("option");
    o.value = r.route_id;
    o.textContent = `${r.short_name} ${r.long_name}`.trim();
    return o;
  }));
  const params = new URLSearchParams(location.search);
  const today = new Date().toLocaleDateString("en-CA", { timeZone: zone }); // YYYY-MM-DD in the agency's zone
  const monthAgo = new Date(Date.now() - 29 * 86400e3).toLocaleDateString("en-CA", { timeZone: zone });
  $("from").value = params.get("from") || monthAgo;
  $("to").value = params.get("to") || today;
  $("day").value = params.get("day") || $("to").value;
  if (params.get("route_id")) $("route").value = params.get("route_id");
  $("key").value = sessionStorage.getItem("smartbus.key") || "";
  const names = Object.fromEntries(routes.map((r) => [r.route_id, r.short_name || r.route_id]));
  const formatTime = (epoch) => new Date(epoch * 1000).toLocaleTimeString("en-GB",
    { hour: "2-digit", minute: "2-digit", timeZone: zone });

  function query(extra) {
    const q = new URLSearchParams({ from: $("from").value, to: $("to").value, early_s: $("early").value,
      late_s: $("late").value, ...extra });
    return q.toString();
  }
  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + $("key").value.trim() } });
    if (!response.ok) {
      let message = response.statusText;
      try { message = (await response.json()).error.message; } catch { /* not JSON */ }
      throw new Error(`${response.status}: ${message}`);
    }
    return response;
  }
  async function show() {
    const status = $("status");
    status.className = "";
    status.textContent = "Loading…";
    sessionStorage.setItem("smartbus.key", $("key").value.trim());
    try {
      const [byRoute, byHour, delays, marey] = await Promise.all([
        api("/api/analytics/on-time?" + query({ by: "route" })).then((r) => r.json()),
        api("/api/analytics/on-time?" + query({ by: "hour" })).then((r) => r.json()),
        api("/api/analytics/delays?" + new URLSearchParams({ from: $("from").value, to: $("to").value })).then((r) => r.json()),
        api(`/api/analytics/routes/${encodeURIComponent($("route").value)}/day?date=${$("day").value}`).then((r) => r.json()),
      ]);
      Charts.stackedShares($("by-route"), byRoute.rows.map((r) => ({ ...r, label: names[r.key] || r.key || "?" })),
        "Share of arrivals early, on time and late, by route");
      const hours = Array.from({ length: 24 }, (_, h) => byHour.rows.find((r) => r.key === h));
      Charts.bars($("by-hour"), hours.map((r, h) => ({
        label: String(h), value: r && r.scheduled ? r.on_time / r.scheduled : 0,
        title: r ? `${h}:00 — ${(100 * (r.on_time_ratio || 0)).toFixed(1)}% on time of ${r.scheduled}` : `${h}:00 — no arrivals`,
      })), 1, "On-time % by hour", "bar-on-time");
      const maxCount = Math.max(1, ...delays.rows.map((r) => r.arrivals));
      Charts.bars($("delays"), delays.rows.map((r) => ({
        label: String(Math.round(r.delay_from_s / 60)), value: r.arrivals,
        title: `${r.delay_from_s / 60} to ${r.delay_to_s / 60} min: ${r.arrivals} arrivals`,
      })), maxCount, "Arrivals by delay in minutes", "bar-delay");
      Charts.marey($("marey"), marey, formatTime);
      const total = byRoute.rows.reduce((n, r) => n + r.arrivals, 0);
      status.textContent = `${total} arrivals from ${$("from").value} to ${$("to").value}; median delay ` +
        `${delays.percentiles_s.p50 === null ? "–" : Math.round(delays.percentiles_s.p50) + " s"}.`;
      document.body.dataset.loaded = "yes";
    } catch (error) {
      status.className = "error";
      status.textContent = String(error.message || error);
    }
  }
  for (const button of document.querySelectorAll("[data-export]")) {
    button.addEventListener("click", async () => {
      const format = button.dataset.export;
      try {
        const blob = await (await api("/api/analytics/on-time?" + query({ by: "route", format }))).blob();
        const a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = `on-time-by-route.${format}`;
        a.click();
        URL.revokeObjectURL(a.href);
      } catch (error) { $("status").textContent = String(error.message || error); }
    });
  }
  $("query").addEventListener("submit", (event) => { event.preventDefault(); show(); });
  if ($("key").value) show();
})();
