// The operator page: what the bot did not understand, hits per intent, the intent set, the
// queues and the agenda, with an agenda upload. Refreshes every 10 seconds.
"use strict";

const TOKEN_KEY = "concierge.admin.token";
let token = sessionStorage.getItem(TOKEN_KEY);
let timer = null;
const $ = (id) => document.getElementById(id);

function facts(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

function rows(table, list, cells) {
  table.tBodies[0].replaceChildren(...list.map((item) => el("tr", {}, cells(item))));
}

async function load() {
  let o;
  try {
    o = await api("/admin/overview", { token });
  } catch (err) {
    if (err.status === 401 || err.status === 403) signOut(err.message);
    else $("updated").textContent = `Could not refresh: ${err.message}`;
    return;
  }
  $("period").textContent = o.period_hours;
  $("rate").textContent = o.messages
    ? `${(o.fallback_rate * 100).toFixed(1)}% of ${o.messages} messages.`
    : "No messages yet.";
  rows($("unmatched"), o.unmatched, (u) => [
    el("td", { class: "text" }, u.text), el("td", {}, u.count), el("td", {}, when(u.last)),
  ]);
  $("no-unmatched").hidden = o.unmatched.length > 0;
  rows($("hits"), o.hits, (h) => [el("th", { scope: "row" }, h.intent), el("td", {}, h.count)]);

  const i = o.intents;
  facts($("intents"), [
    ["Generation", i.generation],
    ["Loaded", `${when(i.loaded_at)} (${i.trigger})`],
    ["Folder", i.dir],
    ["Files", i.files.map((f) => f.split("/").pop()).join(", ")],
    ["Intents", i.stats.intents],
  ]);
  const problems = i.last_error ? i.last_error.problems : [];
  $("reload-error").hidden = !i.last_error;
  $("reload-error").replaceChildren(...(i.last_error ? [
    el("p", {}, `The last reload (${i.last_error.trigger}, ${when(i.last_error.at)}) was refused; the set above is still running:`),
    el("ul", {}, problems.map((p) => el("li", {}, problemText(p)))),
  ] : []));

  $("experts").textContent = `${o.experts.online} of ${o.experts.total} experts online`;
  rows($("queues"), o.queues.queues, (q) => [
    el("th", { scope: "row" }, q.queue), el("td", {}, q.waiting),
    el("td", {}, q.waiting ? duration(q.longest_wait_seconds) : "–"), el("td", {}, q.available_experts),
  ]);

  const a = o.agenda;
  facts($("agenda"), [
    ["Conference", a.conference],
    ["Days", `${a.days.length}: ${a.days.join(", ")}`],
    ["Sessions", a.sessions],
    ["Rooms", a.rooms],
    ["Tracks", a.tracks],
    ["Time zone", a.time_zone],
  ]);
  $("imports").replaceChildren(...a.imports.map((r) => el("li", {},
    `#${r.id} ${when(r.at)} ${r.source}: `,
    r.outcome.result === "replaced"
      ? `${r.outcome.sessions} sessions, ${r.outcome.days} days`
      : el("span", { class: "error" }, `failed: ${r.outcome.error}`))));
  $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

function problemText(p) {
  const where = p.loc ? `${p.loc.file}:${p.loc.line}:${p.loc.column}` : "";
  return `${where ? where + ": " : ""}${p.message || JSON.stringify(p)}`;
}

function signOut(why) {
  clearInterval(timer);
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("overview").hidden = true;
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("sign-in-error").textContent = why || "";
  $("sign-in-error").hidden = !why;
}

async function start() {
  $("sign-in").hidden = true;
  $("overview").hidden = false;
  $("sign-out").hidden = false;
  await load();
  clearInterval(timer);
  timer = setInterval(load, 10000);
}

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  try {
    await api("/admin/intents", { token });
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    start();
  } catch (err) {
    signOut(err.status === 403 ? "That is not the admin token." : err.message);
  }
});
$("sign-out").addEventListener("click", () => signOut(""));

$("reload").addEventListener("click", async () => {
  try {
    await api("/admin/reload", { method: "POST", token });
  } catch (_) { /* the refusal shows in the status below */ }
  load();
});

$("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  const params = new URLSearchParams({ name: file.name, format: $("format").value });
  if ($("tz").value.trim()) params.set("tz", $("tz").value.trim());
  $("upload-result").textContent = "Importing…";
  try {
    const r = await api(`/admin/agenda?${params}`, { method: "POST", token, raw: file });
    $("upload-result").textContent = `Imported (${r.format}): ${r.summary}` +
      (r.warnings.length ? ` · ${r.warnings.length} warnings` : "");
  } catch (err) {
    $("upload-result").textContent = `Not imported, the agenda is unchanged: ${err.message}`;
  }
  load();
});

if (token) start();
