// callwatch nudge page: live level meters and the agent's current nudges.
// Protocol: docs/protocol.md (WebSocket v1, JSON). No build step, no external resources.
"use strict";

(() => {
  const TOPICS = ["alerts", "levels", "calls", "devices"];
  const METER_MIN_DB = -60;
  const SNOOZE_MINUTES = 10;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const LEVELS_STALE_MS = 2000;

  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const statusEl = document.getElementById("status");
  const nudgesEl = document.getElementById("nudges");
  const allGoodEl = document.getElementById("all-good");
  const urgentEl = document.getElementById("urgent");
  const notifyBtn = document.getElementById("notify");

  let ws = null;
  let attempt = 0;
  let reconnectTimer = null;
  let desktopNotifications = false;
  let lastLevelsAt = 0;

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({v: 1, ...msg}));
  }

  // -- nudges -----------------------------------------------------------------------------

  function refreshEmpty() {
    allGoodEl.hidden = nudgesEl.children.length > 0;
  }

  function findNudge(id) {
    for (const li of nudgesEl.children) if (li.dataset.id === id) return li;
    return null;
  }

  function showNudge(id, kind, severity, text, snoozable) {
    let li = findNudge(id);
    const isNew = !li;
    if (isNew) {
      li = document.createElement("li");
      li.dataset.id = id;
      const msg = document.createElement("span");
      msg.className = "msg";
      li.appendChild(msg);
      if (snoozable) {
        const btn = document.createElement("button");
        btn.type = "button";
        btn.className = "snooze";
        btn.textContent = "Snooze";
        btn.title = `Hide this kind of nudge for ${SNOOZE_MINUTES} minutes`;
        btn.setAttribute("aria-label", `Snooze for ${SNOOZE_MINUTES} minutes: ${text}`);
        btn.addEventListener("click", () => send({type: "snooze", kind, minutes: SNOOZE_MINUTES}));
        li.appendChild(btn);
      }
    }
    li.className = `nudge sev-${severity}`;
    li.dataset.kind = kind;
    li.querySelector(".msg").textContent = text;
    if (isNew) {
      // Most severe first, then newest first.
      const rank = {critical: 0, warning: 1, info: 2};
      let before = null;
      for (const other of nudgesEl.children) {
        const r = rank[other.className.replace(/.*sev-/, "")] ?? 3;
        if (r >= rank[severity]) { before = other; break; }
      }
      nudgesEl.insertBefore(li, before);
      if (severity === "critical") urgentEl.textContent = text;
    }
    refreshEmpty();
    return isNew;
  }

  function removeNudge(id) {
    const li = findNudge(id);
    if (li) li.remove();
    refreshEmpty();
  }

  function notify(text) {
    if (!desktopNotifications || !("Notification" in window)) return;
    if (Notification.permission !== "granted" || document.hasFocus()) return;
    try { new Notification("callwatch", {body: text, tag: "callwatch"}); } catch (e) { /* ignore */ }
  }

  function onAlert(a) {
    if (a.state === "firing") {
      if (showNudge(a.id, a.kind, a.severity, a.message, true)) notify(a.message);
    } else {
      removeNudge(a.id);
    }
  }

  function onDevice(d) {
    const id = `device-${d.stream}`;
    if (d.state === "lost") {
      const what = d.stream === "agent" ? "Your headset microphone" : "The customer audio";
      showNudge(id, "device", "critical", `${what} was lost: check the headset connection`, false);
    } else {
      removeNudge(id);
    }
  }

  // -- meters -----------------------------------------------------------------------------

  function pct(db) {
    if (db === null || db === undefined) return 0;
    return Math.max(0, Math.min(100, 100 * (db - METER_MIN_DB) / -METER_MIN_DB));
  }

  function setMeter(stream, m) {
    const el = document.getElementById(`meter-${stream}`);
    if (!el) return;
    const bar = el.querySelector(".bar");
    if (!m) {
      el.dataset.speaking = "false";
      el.querySelector(".fill").style.width = "0%";
      el.querySelector(".db").textContent = "–";
      return;
    }
    el.dataset.speaking = m.speaking ? "true" : "false";
    el.querySelector(".fill").style.width = `${pct(m.rms_dbfs)}%`;
    el.querySelector(".peak").style.left = `${pct(m.peak_dbfs)}%`;
    const floor = el.querySelector(".floor");
    floor.hidden = m.noise_floor_dbfs === null;
    floor.style.left = `${pct(m.noise_floor_dbfs)}%`;
    el.querySelector(".db").textContent = `${Math.round(m.rms_dbfs)}`;
    bar.setAttribute("aria-valuenow", String(Math.round(Math.max(m.rms_dbfs, METER_MIN_DB))));
  }

  function onLevels(msg) {
    lastLevelsAt = Date.now();
    document.body.dataset.levels = "live";
    setMeter("agent", msg.agent);
    setMeter("customer", msg.customer);
  }

  setInterval(() => {
    if (Date.now() - lastLevelsAt > LEVELS_STALE_MS) document.body.dataset.levels = "stale";
  }, 500);

  // -- connection -------------------------------------------------------------------------

  function onMessage(ev) {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    if (!msg || msg.v !== 1) return;
    switch (msg.type) {
      case "hello":
        // The server re-sends the alerts still firing right after hello: start clean.
        for (const li of [...nudgesEl.children]) if (!li.dataset.id.startsWith("device-")) li.remove();
        refreshEmpty();
        desktopNotifications = !!msg.desktop_notifications;
        notifyBtn.hidden = !(desktopNotifications && "Notification" in window &&
                             Notification.permission === "default");
        break;
      case "alert": onAlert(msg.alert); break;
      case "levels": onLevels(msg); break;
      case "device": onDevice(msg); break;
      case "call_started": document.body.dataset.call = "on"; break;
      case "call_ended": document.body.dataset.call = "off"; break;
      case "error": console.warn("callwatch:", msg.code, msg.message); break;
      default: break;  // newer server: ignore what we do not know
    }
  }

  function scheduleReconnect() {
    if (reconnectTimer) return;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt += 1;
    setStatus("reconnecting", `reconnecting in ${Math.ceil(delay / 1000)} s…`);
    reconnectTimer = setTimeout(() => { reconnectTimer = null; connect(); }, delay);
  }

  function connect() {
    if (!token) {
      setStatus("error", "no token: open the link from `callwatch tail --page-url`");
      return;
    }
    const url = `ws://${location.host}/?token=${encodeURIComponent(token)}`;
    try {
      ws = new WebSocket(url, ["callwatch.v1"]);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws.onopen = () => {
      attempt = 0;
      setStatus("connected", "connected");
      send({type: "subscribe", topics: TOPICS});
    };
    ws.onmessage = onMessage;
    ws.onclose = () => { ws = null; scheduleReconnect(); };
    ws.onerror = () => { /* onclose follows */ };
  }

  notifyBtn.addEventListener("click", () => {
    Notification.requestPermission().then(() => {
      notifyBtn.hidden = Notification.permission !== "default";
    });
  });

  refreshEmpty();
  connect();
})();
