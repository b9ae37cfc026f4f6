// callwatch nudge page: live level meters, the agent's current nudges and, after a call, a
// short summary card. Protocol: docs/protocol.md (WebSocket v1, JSON). No build step, no
// external resources.
//
// The meters never contradict a nudge: a party's meter takes the colour of the most severe
// nudge about that party (a talk-over is about whoever started it, dead air about both), and
// "All good" shows only while the page is connected, in the clear and not showing a summary.
"use strict";

(() => {
  const TOPICS = ["alerts", "levels", "calls", "devices"];
  const METER_MIN_DB = -60;
  const SNOOZE_MINUTES = 10;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const LEVELS_STALE_MS = 2000;
  // Agent talk share norm for the summary card (Genesys 40/60; design §5): a report and board
  // band, not a live nudge, so the daemon has no setting for it.
  const TALK_SHARE_BAND = [0.40, 0.60];
  const PARTIES = ["agent", "customer"];
  const SEVERITY_RANK = {critical: 0, warning: 1, info: 2};

  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const statusEl = document.getElementById("status");
  const nudgesEl = document.getElementById("nudges");
  const allGoodEl = document.getElementById("all-good");
  const urgentEl = document.getElementById("urgent");
  const notifyBtn = document.getElementById("notify");
  const summaryEl = document.getElementById("summary");

  let ws = null;
  let attempt = 0;
  let reconnectTimer = null;
  let desktopNotifications = false;
  let lastLevelsAt = 0;

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
    refreshEmpty();
  }

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({v: 1, ...msg}));
  }

  // -- nudges -----------------------------------------------------------------------------

  // "All good" is a claim: make it only when connected, with no nudge up and no summary card
  // (whose flags speak for the call that just ended).
  function refreshEmpty() {
    allGoodEl.hidden = nudgesEl.children.length > 0 || statusEl.dataset.state !== "connected" ||
                       !summaryEl.hidden;
    refreshMeterAlerts();
  }

  // Who a nudge is about: a talk-over's initiator (the agent when not said), a condition's
  // stream, or "call" for whole-call conditions such as dead air (then both meters show it).
  function partyOf(kind, stream, values) {
    if (kind === "talk_over") return (values && values.initiator) === "customer" ? "customer" : "agent";
    return PARTIES.includes(stream) ? stream : "call";
  }

  function refreshMeterAlerts() {
    for (const party of PARTIES) {
      let worst = null;
      for (const li of nudgesEl.children) {
        if (li.dataset.party !== party && li.dataset.party !== "call") continue;
        const sev = li.dataset.severity;
        if (worst === null || SEVERITY_RANK[sev] < SEVERITY_RANK[worst]) worst = sev;
      }
      const el = document.getElementById(`meter-${party}`);
      if (!el) continue;
      if (worst === null) delete el.dataset.alert;
      else el.dataset.alert = worst;
    }
  }

  function findNudge(id) {
    for (const li of nudgesEl.children) if (li.dataset.id === id) return li;
    return null;
  }

  function showNudge(id, kind, party, severity, text, snoozable) {
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
    li.dataset.party = party;
    li.dataset.severity = severity;
    li.querySelector(".msg").textContent = text;
    if (isNew) {
      // Most severe first, then newest first.
      let before = null;
      for (const other of nudgesEl.children) {
        const r = SEVERITY_RANK[other.dataset.severity] ?? 3;
        if (r >= SEVERITY_RANK[severity]) { before = other; break; }
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
      const party = partyOf(a.kind, a.stream, a.values);
      if (showNudge(a.id, a.kind, party, a.severity, a.message, true)) notify(a.message);
    } else {
      removeNudge(a.id);
    }
  }

  function onDevice(d) {
    const id = `device-${d.stream}`;
    if (d.state === "lost") {
      const what = d.stream === "agent" ? "Your headset microphone" : "The customer audio";
      showNudge(id, "device", d.stream, "critical",
                `${what} was lost: check the headset connection`, false);
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
    // A number with its unit; under the meter's range (digital silence is -120) it is just
    // under the scale, not a figure to read.
    el.querySelector(".db").textContent = m.rms_dbfs > METER_MIN_DB
      ? `${Math.round(m.rms_dbfs)} dB` : `< ${METER_MIN_DB} dB`;
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

  // -- call summary -----------------------------------------------------------------------

  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return `${s.toFixed(1)} s`;
    const whole = Math.round(s);
    return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
  }

  function setCell(row, party, text, flag) {
    const td = summaryEl.querySelector(`tr[data-row="${row}"] td[data-party="${party}"]`);
    td.textContent = text;
    td.classList.toggle("flag", !!flag);
    td.removeAttribute("title");
    if (flag) {
      td.title = flag;
      const hint = document.createElement("small");
      hint.textContent = flag;
      td.appendChild(hint);
    }
  }

  // The summary flags only what the agent was nudged about during the call (the call's
  // fast_speech, monologue and talk-over events, with the thresholds they carry) plus the
  // talk share band: the card never disagrees with the nudges the agent saw.
  function showSummary(summary) {
    if (!summary || !summary.agent || !summary.customer) return;
    const events = Array.isArray(summary.events) ? summary.events : [];
    const first = kind => events.find(e => e.kind === kind && e.stream === "agent");
    summaryEl.querySelector(".duration").textContent = duration(summary.duration_s);

    const [low, high] = TALK_SHARE_BAND;
    for (const party of PARTIES) {
      const share = summary[party].talk_share;
      const off = party === "agent" && share !== null && share !== undefined &&
                  (share < low || share > high);
      setCell("talk_share", party, share === null || share === undefined ? "–" :
              `${Math.round(100 * share)} %`,
              off ? `aim ${Math.round(100 * low)}–${Math.round(100 * high)} %` : null);
    }
    const monologue = first("monologue");
    setCell("longest_turn", "agent", duration(summary.agent.longest_turn_s),
            monologue ? `over ${duration(monologue.threshold_s)}` : null);
    setCell("longest_turn", "customer", duration(summary.customer.longest_turn_s), null);
    const fast = first("fast_speech");
    for (const party of PARTIES) {
      const rate = summary[party].speech_rate_sps;
      setCell("pace", party, rate === null || rate === undefined ? "–" : `${rate.toFixed(1)} syl/s`,
              party === "agent" && fast ? `fast: over ${fast.threshold_sps} syl/s` : null);
    }
    const to = summary.talk_over || {};
    setCell("talk_overs", "agent", String(to.by_agent ?? 0),
            to.by_agent > 0 ? "let them finish" : null);
    setCell("talk_overs", "customer", String(to.by_customer ?? 0), null);

    summaryEl.hidden = false;
    refreshEmpty();
  }

  function hideSummary() {
    summaryEl.hidden = true;
    refreshEmpty();
  }

  document.getElementById("summary-close").addEventListener("click", hideSummary);

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
      case "call_started": document.body.dataset.call = "on"; hideSummary(); break;
      case "call_ended": document.body.dataset.call = "off"; showSummary(msg.summary); break;
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
