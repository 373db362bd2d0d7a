// The attendee web chat. Protocol: see src/http/chat.rs. Every message has a number `n`; the page
// shows each number once, keeps the highest it has shown, and resumes after it on every
// (re)connection, so a reload or a dropped socket neither loses nor repeats a message. Messages
// typed but not yet answered are kept in localStorage and sent again with the same id (the
// server answers a repeated id without running it twice).
"use strict";

const TOKEN_KEY = "concierge.chat.token";
const PENDING_KEY = "concierge.chat.pending";
const BROWSER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

const log = document.getElementById("log");
const input = document.getElementById("text");
const typing = document.getElementById("typing");
const queue = document.getElementById("queue");
const quick = document.getElementById("quick");
const notice = document.getElementById("notice");
const connection = document.getElementById("connection");

let token = localStorage.getItem(TOKEN_KEY);
let lastN = 0;
let pending = loadPending();
let socket = null;
let retryDelay = 500;
let failedOpens = 0;
let resuming = false;
let pollTimer = null;

function loadPending() {
  try { return JSON.parse(localStorage.getItem(PENDING_KEY)) || []; } catch (_) { return []; }
}
function savePending() { localStorage.setItem(PENDING_KEY, JSON.stringify(pending)); }

function setConnection(state, text) {
  connection.dataset.state = state;
  connection.textContent = text;
}

function showNotice(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

// --- rendering -------------------------------------------------------------------------------

function timeIn(zone, iso, withDay) {
  const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone };
  if (withDay) options.weekday = "short";
  return new Intl.DateTimeFormat([], options).format(new Date(iso));
}

/** The session's time on the browser's clock, when the browser is in another zone. */
function localTime(card) {
  if (!BROWSER_ZONE || BROWSER_ZONE === card.time_zone) return null;
  try {
    const there = timeIn(card.time_zone, card.start, true) + timeIn(card.time_zone, card.end);
    const here = timeIn(BROWSER_ZONE, card.start, true) + timeIn(BROWSER_ZONE, card.end);
    if (there === here) return null;
    return `${timeIn(BROWSER_ZONE, card.start, true)}–${timeIn(BROWSER_ZONE, card.end)} your time`;
  } catch (_) {
    return null;
  }
}

function sessionCard(c) {
  const local = localTime(c);
  const where = [c.room, c.track].filter(Boolean).join(" · ");
  const button = el("button", {
    type: "button", class: "save", dataset: { session: c.id }, "aria-pressed": String(!!c.saved),
    disabled: !!c.saved, onclick: () => send(`Add to my agenda: ${c.title}`.slice(0, 1000), c.id),
  }, c.saved ? "Saved ✓" : "Add to my agenda");
  return el("article", { class: "card", dataset: { session: c.id } },
    el("h3", { class: "title" }, c.title),
    el("p", { class: "when" }, `${c.day} · ${c.time} `, el("span", { class: "zone" }, `(${c.time_zone})`)),
    local && el("p", { class: "local" }, local),
    where && el("p", { class: "where" }, where),
    c.speakers && c.speakers.length > 0 && el("p", { class: "speakers" }, c.speakers.join(", ")),
    button);
}

function markSaved(id) {
  for (const b of document.querySelectorAll(`button.save[data-session="${CSS.escape(id)}"]`)) {
    b.textContent = "Saved ✓";
    b.disabled = true;
    b.setAttribute("aria-pressed", "true");
  }
}

const WHO = { attendee: "You", concierge: "Concierge", expert: "Expert" };

function render(message) {
  if (message.n <= lastN) return;
  if (message.n > lastN + 1) { resume(); return; } // a gap: fetch what is missing, in order
  lastN = message.n;
  const who = message.from === "expert" && message.by ? message.by : WHO[message.from] || "";
  const item = el("li", { class: `message from-${message.from}`, dataset: { n: message.n } },
    el("span", { class: "who" }, who),
    el("p", { class: "text" }, message.text),
    message.sessions && message.sessions.length > 0 &&
      el("div", { class: "cards" }, message.sessions.map(sessionCard)));
  // Numbered messages go before the bubbles of messages still being sent.
  log.insertBefore(item, log.querySelector(".sending"));
  for (const c of message.sessions || []) if (c.saved) markSaved(c.id);
  item.scrollIntoView({ block: "end" });
}

function renderAll(messages) {
  for (const m of messages || []) render(m);
}

/** The side panel: the saved sessions in time order, overlaps flagged, each removable. */
function showAgenda(agenda) {
  if (!agenda) return;
  document.getElementById("agenda-count").textContent = agenda.length;
  document.getElementById("agenda-empty").hidden = agenda.length > 0;
  document.getElementById("my-agenda").replaceChildren(...agenda.map((c) => {
    const local = localTime(c);
    return el("li", { class: "saved-session", dataset: { session: c.id } },
      el("p", { class: "title" }, c.title),
      el("p", { class: "when" }, `${c.day} · ${c.time}${c.room ? " · " + c.room : ""}`),
      local && el("p", { class: "local" }, local),
      c.overlaps && c.overlaps.length > 0 &&
        el("p", { class: "overlap" }, `Overlaps with ${c.overlaps.join(", ")}`),
      el("button", {
        type: "button", class: "remove secondary", "aria-label": `Remove ${c.title}`,
        onclick: () => send(`Remove from my agenda: ${c.title}`.slice(0, 1000), null, c.id),
      }, "Remove"));
  }));
  // Cards in the conversation follow: a removed session can be added again.
  const saved = new Set(agenda.map((c) => c.id));
  for (const b of document.querySelectorAll("#log button.save")) {
    const on = saved.has(b.dataset.session);
    b.textContent = on ? "Saved ✓" : "Add to my agenda";
    b.disabled = on;
    b.setAttribute("aria-pressed", String(on));
  }
}

function showState(state, replies, agenda) {
  showAgenda(agenda);
  if (state) {
    let text = "";
    if (state.mode === "waiting") {
      text = state.position ? `You're #${state.position} in the queue` : "Waiting for an expert";
      if (state.minutes === 0) text += ", an expert is about to join";
      else if (state.minutes) text += `, about ${state.minutes} min`;
    } else if (state.mode === "expert") {
      text = state.expert ? `You're chatting with ${state.expert}` : "You're chatting with an expert";
    }
    queue.textContent = text;
    queue.hidden = !text;
    queue.dataset.mode = state.mode;
  }
  if (replies) {
    quick.replaceChildren(...replies.map((r) =>
      el("button", { type: "button", onclick: () => send(r) }, r)));
  }
}

function showPendingBubble(p) {
  if (log.querySelector(`[data-pending="${CSS.escape(p.id)}"]`)) return;
  log.append(el("li", { class: "message from-attendee sending", dataset: { pending: p.id } },
    el("span", { class: "who" }, "You"), el("p", { class: "text" }, p.text)));
}

function settle(id) {
  pending = pending.filter((p) => p.id !== id);
  savePending();
  const bubble = log.querySelector(`[data-pending="${CSS.escape(id)}"]`);
  if (bubble) bubble.remove();
  typing.hidden = pending.length === 0;
}

function failed(id, why) {
  const bubble = log.querySelector(`[data-pending="${CSS.escape(id)}"]`);
  pending = pending.filter((p) => p.id !== id);
  savePending();
  typing.hidden = pending.length === 0;
  if (bubble) {
    bubble.classList.replace("sending", "failed");
    bubble.removeAttribute("data-pending");
    bubble.append(el("p", { class: "error" }, `Not sent: ${why}`));
  } else {
    showNotice(why);
  }
}

// --- the exchange ----------------------------------------------------------------------------

function onAnswer(id, answer) {
  settle(id);
  if (answer.duplicate) resume();
  renderAll(answer.messages);
  showState(answer.state, answer.quick_replies, answer.agenda);
  showNotice("");
}

function newId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return "m" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function send(text, save, remove) {
  text = text.trim();
  if (!text) return;
  const p = { id: newId(), text };
  if (save) p.save = save;
  if (remove) p.remove = remove;
  pending.push(p);
  savePending();
  showPendingBubble(p);
  typing.hidden = false;
  transmit(p);
}

function transmit(p) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: "message", ...p }));
    return;
  }
  if (!token) return;
  // No socket: the same exchange over plain HTTP.
  api("/chat/messages", { method: "POST", body: { token, ...p } })
    .then((answer) => onAnswer(p.id, answer))
    .catch((err) => {
      if (err.status) failed(p.id, err.message);
      // A network error leaves it pending: it is sent again when the connection is back.
    });
}

function resume() {
  if (resuming) return;
  if (socket && socket.readyState === WebSocket.OPEN) {
    resuming = true;
    socket.send(JSON.stringify({ type: "resume", after: lastN }));
    return;
  }
  resuming = true;
  api(`/chat/messages?token=${encodeURIComponent(token)}&after=${lastN}`)
    .then((h) => { renderAll(h.messages); showState(h.state, h.quick_replies, h.agenda); })
    .catch(() => {})
    .finally(() => { resuming = false; });
}

function onFrame(event) {
  let frame;
  try { frame = JSON.parse(event.data); } catch (_) { return; }
  switch (frame.type) {
    case "reply": onAnswer(frame.id, frame); break;
    case "history":
      resuming = false;
      renderAll(frame.messages);
      showState(frame.state, frame.quick_replies, frame.agenda);
      break;
    case "push": render(frame.message); showState(frame.state, frame.quick_replies, frame.agenda); break;
    case "state": showState(frame.state, frame.quick_replies, frame.agenda); break;
    case "resync": resume(); break;
    case "error":
      if (frame.id) failed(frame.id, frame.message);
      else showNotice(frame.message);
      break;
  }
}

function connect() {
  const url = new URL(`/chat/ws?token=${encodeURIComponent(token)}`, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  let opened = false;
  socket = new WebSocket(url);
  socket.addEventListener("open", () => {
    opened = true;
    failedOpens = 0;
    retryDelay = 500;
    setConnection("online", "Connected");
    stopPolling();
    resuming = false;
    resume();
    for (const p of pending) transmit(p);
  });
  socket.addEventListener("message", onFrame);
  socket.addEventListener("close", () => {
    socket = null;
    resuming = false;
    if (!opened) failedOpens += 1;
    setConnection("offline", "Reconnecting…");
    // Without a socket, keep the conversation going over HTTP.
    if (failedOpens >= 2) startPolling();
    const delay = retryDelay + Math.random() * retryDelay;
    retryDelay = Math.min(retryDelay * 2, 10000);
    setTimeout(connect, delay);
  });
}

function startPolling() {
  if (pollTimer) return;
  for (const p of pending) transmit(p);
  pollTimer = setInterval(resume, 3000);
}
function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

async function start() {
  api("/readyz").then((r) => {
    const name = r && r.agenda && r.agenda.conference;
    if (name) {
      document.getElementById("conference").textContent = name;
      document.title = `${name} · Concierge`;
    }
  }).catch(() => {});
  for (;;) {
    if (!token) {
      try {
        token = (await api("/chat/sessions", { method: "POST", body: {} })).token;
        localStorage.setItem(TOKEN_KEY, token);
      } catch (err) {
        setConnection("offline", "Cannot reach concierge, retrying…");
        await new Promise((r) => setTimeout(r, 3000));
        continue;
      }
    }
    break;
  }
  for (const p of pending) showPendingBubble(p);
  typing.hidden = pending.length === 0;
  showState({ mode: "bot" }, ["What's next?", "Talk to an expert", "My agenda"]);
  connect();
}

const toggle = document.getElementById("agenda-toggle");
toggle.addEventListener("click", () => {
  const open = toggle.getAttribute("aria-expanded") !== "true";
  toggle.setAttribute("aria-expanded", String(open));
  document.body.classList.toggle("agenda-open", open);
  if (open) document.getElementById("agenda-h").focus();
});
document.getElementById("agenda-h").tabIndex = -1;
document.getElementById("calendar").addEventListener("click", () => send("Calendar link"));

document.getElementById("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  send(input.value);
  input.value = "";
  input.focus();
});

// For the browser tests: where the page stands.
window.conciergeChat = {
  get lastN() { return lastN; },
  get connected() { return !!socket && socket.readyState === WebSocket.OPEN; },
};

start();
