// The expert console: sign in with the expert token (kept for this tab only), set availability,
// watch the queues, accept or pass offers before their deadline, and work several conversations
// at once. Live through the server-sent events of /expert/events.
"use strict";

const TOKEN_KEY = "concierge.expert.token";
let token = sessionStorage.getItem(TOKEN_KEY);
let me = null;
let selected = null; // the task id of the open conversation
const histories = new Map(); // task id → its history, as last fetched
let events = null; // AbortController of the event stream

const $ = (id) => document.getElementById(id);

function showError(where, text) {
  $(where).textContent = text || "";
  $(where).hidden = !text;
}

async function call(path, options = {}) {
  try {
    return await api(path, { token, ...options });
  } catch (err) {
    if (err.status === 401 || err.status === 403) signOut(err.message);
    throw err;
  }
}

function signOut(why) {
  if (events) events.abort();
  events = null;
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("desk").hidden = true;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("live").hidden = true;
  $("who").textContent = "";
  showError("sign-in-error", why || "");
}

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  try {
    await refresh();
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    started();
  } catch (err) {
    signOut(err.status === 403 ? "That token is not an expert token." : err.message);
  }
});
$("sign-out").addEventListener("click", () => signOut(""));

function started() {
  $("sign-in").hidden = true;
  $("desk").hidden = false;
  $("sign-out").hidden = false;
  $("live").hidden = false;
  listen();
  refreshQueues();
}

// --- state ------------------------------------------------------------------------------------

async function refresh() {
  me = await call("/expert/me");
  $("who").textContent = `${me.expert.name} · ${me.expert.skills.join(", ")}`;
  for (const radio of document.querySelectorAll('input[name="status"]')) {
    radio.checked = radio.value === me.expert.status;
  }
  $("capacity").textContent =
    `${me.conversations.length} of ${me.expert.capacity} conversations`;
  renderOffers();
  renderTabs();
}

async function refreshQueues() {
  if (!token) return;
  try {
    const stats = await call("/expert/queue");
    $("queues").tBodies[0].replaceChildren(...stats.queues.map((q) => el("tr", {},
      el("th", { scope: "row" }, q.queue),
      el("td", {}, q.waiting),
      el("td", {}, q.waiting ? duration(q.longest_wait_seconds) : "–"),
      el("td", {}, q.available_experts))));
  } catch (_) { /* shown at the next refresh */ }
}
setInterval(refreshQueues, 5000);

for (const radio of document.querySelectorAll('input[name="status"]')) {
  radio.addEventListener("change", async () => {
    try {
      await call("/expert/status", { method: "PUT", body: { status: radio.value } });
      await refresh();
      refreshQueues();
    } catch (err) {
      showError("conv-error", err.message);
    }
  });
}

// --- offers -----------------------------------------------------------------------------------

function renderOffers() {
  const list = $("offers");
  list.replaceChildren(...me.offers.map((task) => {
    const countdown = el("span", { class: "countdown", dataset: { deadline: task.reservation.deadline } });
    return el("li", { class: "offer", dataset: { task: task.id } },
      el("p", { class: "question" }, task.question),
      el("p", { class: "muted" },
        [task.skill || "general", task.language, task.attendee].join(" · "), " · ", countdown),
      el("button", { type: "button", class: "accept", onclick: () => accept(task.id) }, "Accept"),
      el("button", { type: "button", class: "reject", onclick: () => reject(task.id) }, "Pass"));
  }));
  $("no-offers").hidden = me.offers.length > 0;
  tick();
}

function tick() {
  for (const c of document.querySelectorAll(".countdown")) {
    const left = (new Date(c.dataset.deadline) - Date.now()) / 1000;
    c.textContent = left > 0 ? `${Math.ceil(left)} s left to accept` : "time is up";
  }
}
setInterval(tick, 1000);

async function accept(id) {
  try {
    await call(`/expert/tasks/${id}/accept`, { method: "POST" });
    selected = id;
  } catch (err) {
    showError("conv-error", err.message);
  }
  await refresh();
}

async function reject(id) {
  try {
    await call(`/expert/tasks/${id}/reject`, { method: "POST" });
  } catch (err) {
    showError("conv-error", err.message);
  }
  await refresh();
}

// --- conversations ----------------------------------------------------------------------------

function renderTabs() {
  const tabs = $("tabs");
  const ids = me.conversations.map((t) => t.id);
  if (!ids.includes(selected)) selected = ids[0] ?? null;
  tabs.replaceChildren(...me.conversations.map((task) => el("button", {
    type: "button", role: "tab", id: `tab-${task.id}`, "aria-selected": String(task.id === selected),
    tabindex: task.id === selected ? "0" : "-1", dataset: { task: task.id },
    onclick: () => { selected = task.id; renderTabs(); },
  }, `#${task.id} ${task.question.slice(0, 30)}`)));
  $("no-conversations").hidden = ids.length > 0;
  $("conversation").hidden = selected === null;
  if (selected !== null) {
    $("conversation").setAttribute("aria-labelledby", `tab-${selected}`);
    loadConversation(selected);
  }
}

$("tabs").addEventListener("keydown", (event) => {
  const tabs = [...$("tabs").querySelectorAll('[role="tab"]')];
  const i = tabs.findIndex((t) => t.getAttribute("aria-selected") === "true");
  const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
  if (!step || i < 0) return;
  const next = tabs[(i + step + tabs.length) % tabs.length];
  selected = Number(next.dataset.task);
  renderTabs();
  $(`tab-${selected}`).focus();
});

async function loadConversation(id) {
  try {
    const detail = await call(`/expert/tasks/${id}`);
    histories.set(id, detail);
    if (id !== selected) return;
    const t = detail.task;
    $("conv-meta").textContent =
      `${t.attendee} · ${t.skill || "general"} · ${t.language} · asked ${when(t.created)}`;
    $("history").replaceChildren(...detail.history.map((m) => {
      const handedOff = m.from === "attendee" && m.text === t.question;
      return el("li", { class: `message from-${m.from}${handedOff ? " handoff" : ""}` },
        el("span", { class: "who" }, m.from === "expert" ? (m.by || "Expert") : m.from === "attendee" ? "Attendee" : "Concierge"),
        handedOff && el("strong", { class: "tag" }, "handed off"),
        el("p", { class: "text" }, m.text));
    }));
    const last = $("history").lastElementChild;
    if (last) last.scrollIntoView({ block: "end" });
  } catch (err) {
    showError("conv-error", err.message);
  }
}

$("reply").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("reply-text").value.trim();
  if (!text || selected === null) return;
  try {
    await call(`/expert/tasks/${selected}/messages`, { method: "POST", body: { text } });
    $("reply-text").value = "";
    showError("conv-error", "");
    await loadConversation(selected);
  } catch (err) {
    showError("conv-error", err.message);
  }
});

$("complete").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (selected === null) return;
  const lead = {
    name: $("lead-name").value, company: $("lead-company").value, email: $("lead-email").value,
    interest: $("lead-interest").value, consent: $("lead-consent").checked,
  };
  const hasLead = lead.name || lead.company || lead.email || lead.interest;
  try {
    await call(`/expert/tasks/${selected}/complete`, {
      method: "POST", body: { notes: $("notes").value, lead: hasLead ? lead : null },
    });
    $("complete").reset();
    $("complete-box").open = false;
    showError("conv-error", "");
    selected = null;
    await refresh();
  } catch (err) {
    showError("conv-error", err.message);
  }
});

// --- live -------------------------------------------------------------------------------------

async function listen() {
  let delay = 1000;
  while (token) {
    events = new AbortController();
    try {
      $("live").dataset.state = "online";
      $("live").textContent = "Live";
      await refresh();
      await eventStream("/expert/events", token, onEvent, events.signal);
      delay = 1000;
    } catch (err) {
      if (err.name === "AbortError" || err.status === 401 || err.status === 403) return;
    }
    $("live").dataset.state = "offline";
    $("live").textContent = "Reconnecting…";
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

function onEvent(name, data) {
  if (name === "lagged") { refresh(); return; }
  let event;
  try { event = JSON.parse(data); } catch (_) { return; }
  if (event.event === "message" && event.task === selected) loadConversation(selected);
  else refresh();
  refreshQueues();
}

window.conciergeConsole = { get signedIn() { return !!me && !!token; } };

if (token) {
  refresh().then(started).catch(() => signOut(""));
}
