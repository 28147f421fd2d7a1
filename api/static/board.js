// The riders' arrivals board for one stop: live countdowns from /ws/stops/{stop_id}, English and Vietnamese.
// Names (the stop, routes, headsigns) come in the chosen language where the feed translates them (?lang=).
"use strict";
(function () {
  const TEXT = {
    en: {
      switchTo: "Tiếng Việt", other: "vi", title: "Arrivals", live: "live", scheduled: "scheduled",
      liveKey: "time from the bus's position", scheduledKey: "timetable only",
      due: "Due", min: "min", none: "No buses expected in the next while.",
      updated: (s) => `Updated ${s} s ago`, connecting: "Connecting…", lost: "Connection lost — reconnecting…",
      notFound: "Stop not found.", bus: "Bus", at: "at", late: "late", early: "early",
      cancelled: "Cancelled", skipped: "Not stopping here", wheelchair: "wheelchair accessible",
      timesIn: (zone) => `Times in ${zone}`,
    },
    vi: {
      switchTo: "English", other: "en", title: "Xe sắp đến", live: "trực tiếp", scheduled: "theo lịch",
      liveKey: "tính từ vị trí xe", scheduledKey: "chỉ theo lịch trình",
      due: "Sắp đến", min: "phút", none: "Chưa có xe nào sắp đến.",
      updated: (s) => `Cập nhật ${s} giây trước`, connecting: "Đang kết nối…", lost: "Mất kết nối — đang kết nối lại…",
      notFound: "Không tìm thấy điểm dừng.", bus: "Xe", at: "lúc", late: "trễ", early: "sớm",
      cancelled: "Đã hủy", skipped: "Không dừng ở đây", wheelchair: "có chỗ cho xe lăn",
      timesIn: (zone) => `Giờ theo ${zone}`,
    },
  };
  const stopId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const params = new URLSearchParams(location.search);
  let lang = params.get("lang") || localStorage.getItem("smartbus.lang") ||
    (navigator.language || "en").slice(0, 2);
  if (!TEXT[lang]) lang = "en";
  let arrivals = [];
  let lastMessageAt = null; // our clock, ms
  let serverOffset = 0; // server clock minus ours, seconds
  let connection = "connecting";
  let stopName = stopId;
  let timeZone; // the agency's, from /api/config: a rider's phone may be set to another zone
  const $ = (id) => document.getElementById(id);

  function nowServer() { return Date.now() / 1000 + serverOffset; }
  function clock(epoch) {
    return new Date(epoch * 1000).toLocaleTimeString(lang === "vi" ? "vi-VN" : "en-AU",
      { hour: "2-digit", minute: "2-digit", timeZone });
  }
  function render() {
    const t = TEXT[lang];
    document.documentElement.lang = lang;
    document.title = `${t.title} — ${stopName}`;
    $("stop-name").textContent = stopName;
    $("lang").textContent = t.switchTo;
    $("lang").setAttribute("aria-label", t.switchTo);
    $("key-live").textContent = t.live; $("key-live-text").textContent = t.liveKey;
    $("key-scheduled").textContent = t.scheduled; $("key-scheduled-text").textContent = t.scheduledKey;
    const status = $("status");
    status.classList.toggle("warn", connection !== "live");
    if (connection === "not-found") status.textContent = t.notFound;
    else if (connection !== "live") status.textContent = connection === "connecting" ? t.connecting : t.lost;
    else if (lastMessageAt !== null) status.textContent = t.updated(Math.round((Date.now() - lastMessageAt) / 1000));
    const now = nowServer();
    const list = $("arrivals");
    list.replaceChildren(...arrivals.map((a) => row(a, now, t)));
    $("empty").hidden = arrivals.length > 0 || connection !== "live";
    $("empty").textContent = t.none;
    $("zone").textContent = timeZone ? t.timesIn(timeZone) : "";
  }
  function row(a, now, t) {
    const li = document.createElement("li");
    const route = document.createElement("span");
    route.className = "route";
    route.textContent = a.route_short_name || a.route_id || "?";
    if (a.route_color) route.style.background = a.route_color, route.style.color = textOn(a.route_color);
    const middle = document.createElement("div");
    const headsign = document.createElement("div");
    headsign.className = "headsign";
    headsign.textContent = a.headsign || "";
    const detail = document.createElement("div");
    detail.className = "detail";
    const badge = document.createElement("span");
    badge.className = a.live ? "badge-live" : "badge-scheduled";
    badge.textContent = a.live ? t.live : t.scheduled;
    detail.append(badge, ` ${t.at} ${clock(a.predicted_arrival)}`);
    if (a.wheelchair_accessible) {
      const chair = document.createElement("span");
      chair.className = "wheelchair";
      chair.textContent = " ♿";
      chair.title = t.wheelchair;
      chair.setAttribute("aria-label", t.wheelchair);
      chair.setAttribute("role", "img");
      detail.append(chair);
    }
    if (a.live && a.scheduled_arrival !== null && !a.cancelled && !a.skipped) {
      const late = Math.round((a.predicted_arrival - a.scheduled_arrival) / 60);
      if (late !== 0) detail.append(` · ${Math.abs(late)} ${t.min} ${late > 0 ? t.late : t.early}`);
    }
    middle.append(headsign, detail);
    const when = document.createElement("div");
    when.className = "when";
    const countdown = document.createElement("span");
    countdown.className = "countdown";
    const minutes = Math.floor((a.predicted_arrival - now) / 60);
    countdown.textContent = minutes <= 0 ? t.due : `${minutes} ${t.min}`;
    if (a.cancelled || a.skipped) {
      countdown.textContent = a.cancelled ? t.cancelled : t.skipped;
      li.classList.add("not-coming");
    }
    when.append(countdown);
    li.append(route, middle, when);
    li.setAttribute("aria-label", `${t.bus} ${route.textContent} ${a.headsign || ""}: ${countdown.textContent}, ` +
      `${badge.textContent}, ${t.at} ${clock(a.predicted_arrival)}${a.wheelchair_accessible ? ", " + t.wheelchair : ""}`);
    return li;
  }
  function textOn(hex) {
    const n = parseInt(hex.slice(1), 16);
    const luminance = (0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)) / 255;
    return luminance > 0.6 ? "#000" : "#fff";
  }
  function inLanguage(path) { return path + "?lang=" + encodeURIComponent(lang); }
  function loadStopName() {
    const asked = lang;
    fetch(inLanguage("/api/stops/" + encodeURIComponent(stopId)))
      .then((r) => (r.ok ? r.json() : null))
      .then((stop) => { if (stop && asked === lang) { stopName = stop.name; render(); } });
  }
  const boardPath = () => inLanguage("/ws/stops/" + encodeURIComponent(stopId));
  $("lang").addEventListener("click", () => {
    lang = TEXT[lang].other;
    localStorage.setItem("smartbus.lang", lang);
    const url = new URL(location.href);
    url.searchParams.set("lang", lang);
    history.replaceState(null, "", url);
    render();
    loadStopName();
    socket.moveTo(boardPath()); // the same board, its names in the new language
  });
  fetch("/api/config").then((r) => r.json()).then((config) => { timeZone = config.timezone; render(); });
  loadStopName();
  const socket = liveSocket(boardPath(), (msg) => {
    serverOffset = msg.server_time - Date.now() / 1000;
    lastMessageAt = Date.now();
    arrivals = msg.arrivals;
    render();
  }, (state) => { connection = state; render(); });
  setInterval(render, 1000);
  render();
})();
