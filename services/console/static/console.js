// The console's one script: live pieces from server-sent events, ticking ages and deadlines, actions
// sent without leaving the page, and the triage keys. Every page works without it (forms post and
// redirect); it only saves reloads and clicks.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf"]')?.content || "";

function notice(text, kind) {
  const box = document.getElementById("notice");
  if (!box) return;
  box.textContent = text;
  box.className = "flash live " + (kind || "ok");
  box.hidden = !text;
}

// ── live pieces ───────────────────────────────────────────────────────────────
// A browser gives an EventSource up for good after one answer that is not a 200 (a 502 while the console
// restarts): the script connects again itself, waiting twice as long each time up to a minute, and says
// on the page that it is not live while it is not.
const down = new Set();
function showLive() {
  const banner = document.getElementById("not-live");
  if (banner) banner.hidden = down.size === 0;
}
function connect(url) {
  let wait = 1000;
  const open = () => {
    const source = new EventSource(url);
    source.addEventListener("open", () => { wait = 1000; down.delete(url); showLive(); });
    source.addEventListener("error", () => {
      down.add(url);
      showLive();
      if (source.readyState === EventSource.CLOSED) { // the browser will not try again: we do
        setTimeout(open, wait);
        wait = Math.min(wait * 2, 60000);
      }
    });
    source.addEventListener("swap", (event) => {
      const { target, html } = JSON.parse(event.data);
      const node = document.getElementById(target);
      if (node) swap(node, html);
    });
    source.addEventListener("rendered", (event) => { // the stream looked: what it sent up to here is newer
      const { at } = JSON.parse(event.data);
      document.querySelectorAll("form[data-awaiting]").forEach((form) => {
        if (Number(form.dataset.awaiting) <= at) settle(form, true);
      });
    });
    source.addEventListener("end", (event) => { // nothing to show here (a case not there): not again
      source.close();
      down.delete(url);
      showLive();
      notice(JSON.parse(event.data).message, "error");
    });
    source.addEventListener("signedout", () => { source.close(); location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search); });
  };
  open();
}

// A piece whose action is on its way keeps its disabled buttons until the answer: put back enabled, one
// more click would send the action again. Its newest change is held (`data-held`) and put in then. After
// an action that was done, until a change the stream rendered after it: one from before (the approved
// freeze's "approve" again) would only earn the next click a refusal (`data-awaiting`, the answer's `at`).
// Nor is a form pulled away from someone filling it in: the change is held until the focus leaves its piece
// (the stream sends a piece only when it changed, so a change left out would not come again).
const held = new Map();
const AWAIT_MAX_MS = 5000; // (the stream away: the piece as it was last sent)
function swap(node, html) {
  // (someone who typed in a piece and moved on within it, to its button, is still filling it in)
  const within = node.contains(document.activeElement);
  const typing = within && (/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName) || node.dataset.held);
  if (typing || node.querySelector("form[data-sending]")) {
    held.set(node.id, html);
    node.dataset.held = "1";
    return;
  }
  held.delete(node.id); // (this change is newer than any held)
  delete node.dataset.held;
  const selected = document.activeElement?.closest("[data-id]")?.dataset.id;
  node.innerHTML = html;
  tick();
  if (selected) node.querySelector(`[data-id="${selected}"]`)?.focus();
}
function release() {
  for (const [id, html] of [...held]) {
    const node = document.getElementById(id);
    if (!node) { held.delete(id); continue; }
    delete node.dataset.held; // (swap holds it again if another of its actions is on its way, or one types in it)
    swap(node, html);
  }
}
// Released once the focus has moved; while a pointer is down, once its click is dispatched (a browser that
// does not focus a clicked button would otherwise see the form replaced under the pointer, the click lost).
let pressing = false;
document.addEventListener("pointerdown", () => { pressing = true; }, true);
for (const type of ["pointerup", "pointercancel"]) {
  document.addEventListener(type, () => { pressing = false; setTimeout(release); }, true);
}
document.addEventListener("focusout", (event) => {
  const piece = event.target.closest?.("[data-held]");
  if (piece && !piece.contains(event.relatedTarget) && !pressing) setTimeout(release);
});

// ── ages and countdowns ───────────────────────────────────────────────────────
function span(seconds) {
  const s = Math.abs(Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(r).padStart(2, "0");
}
const zh = () => document.documentElement.lang.startsWith("zh");
function tick() {
  const now = Date.now();
  document.querySelectorAll("[data-age]").forEach((el) => {
    const s = (now - Date.parse(el.dataset.age)) / 1000;
    el.textContent = zh() ? span(s) + " 前" : span(s) + " ago";
  });
  document.querySelectorAll("[data-due]").forEach((el) => {
    const s = (Date.parse(el.dataset.due) - now) / 1000;
    el.textContent = s >= 0 ? (zh() ? "剩 " : "in ") + span(s) : (zh() ? "超时 " : "late ") + span(s);
    el.classList.toggle("late", s < 0);
    el.classList.toggle("soon", s >= 0 && s < 120);
  });
}

// ── actions without leaving the page ──────────────────────────────────────────
// The forms acting on one thing (an instruction's approve, decline and cancel): one of them at a time.
const siblings = (form) => form.closest(".actions") || form;
async function send(form) {
  // One request per thing at a time: a double click would send the action twice, and the second one's
  // refusal (409, already done) would be all the person reads of an action that succeeded; a decline
  // clicked while its approval is on its way would be refused the same way once the approval is done.
  const group = siblings(form);
  if (form.dataset.sending || group.querySelector("form[data-sending]")) return;
  form.dataset.sending = "1";
  group.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  try {
    let response;
    try {
      response = await fetch(form.action, { method: "POST", body: new FormData(form), headers: { Accept: "application/json" } });
    } catch (e) { // no answer at all: the action may or may not have been done
      notice(zh() ? "网络错误：操作可能未送达，请刷新页面查看结果。" : "Network error: the action may not have been done; reload the page to see.", "error");
      return;
    }
    let body = {};
    try { body = await response.json(); } catch (e) { body = { message: response.status + " " + response.statusText }; }
    notice(body.message, body.ok ? "ok" : "error");
    if (response.status === 401 && body.signin) { // the session ended: nothing was done; sign in again
      location.href = body.signin + "?next=" + encodeURIComponent(location.pathname + location.search);
    }
    if (body.ok && typeof body.at === "number") {
      if (form.contains(document.activeElement)) document.activeElement.blur(); // (sent: not being filled in)
      const awaiting = (form.dataset.awaiting = String(body.at));
      setTimeout(() => { if (form.dataset.awaiting === awaiting) settle(form, true); }, AWAIT_MAX_MS);
    }
  } finally {
    if (!form.dataset.awaiting) settle(form, false);
  }
}
function settle(form, done) {
  if (!form.dataset.sending) return; // (settled already)
  delete form.dataset.sending;
  delete form.dataset.awaiting;
  release(); // (first: a change held replaces the form, whose buttons are then enabled out of sight)
  // Done, with a change held still (another action of its piece on its way, someone typing in it): the form
  // is the one from before the action, replaced later.
  if (done && form.closest("[data-held]")) return;
  siblings(form).querySelectorAll("button").forEach((b) => { b.disabled = false; });
}
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.method !== "post" || !form.closest("[data-live], .live-piece")) return; // other forms post as usual
  event.preventDefault();
  send(form);
});

// ── triage keys ───────────────────────────────────────────────────────────────
function rows() { return [...document.querySelectorAll("tr.incident")]; }
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || /INPUT|TEXTAREA|SELECT/.test(event.target.tagName)) return;
  const all = rows();
  if (!all.length) return;
  const at = all.indexOf(document.activeElement?.closest("tr.incident"));
  const row = all[at];
  if (event.key === "j" || event.key === "ArrowDown") { (all[at + 1] || all[0]).focus(); event.preventDefault(); }
  else if (event.key === "k" || event.key === "ArrowUp") { (all[at - 1] || all[all.length - 1]).focus(); event.preventDefault(); }
  else if (row && event.key === "Enter") { location.href = row.dataset.href; }
  else if (row && event.key === "e") { location.href = row.dataset.href; }
  else if (row && (event.key === "t" || event.key === "d")) {
    const form = row.querySelector(`form[data-key="${event.key}"]`);
    if (form) send(form);
  }
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach((el) => connect(el.dataset.live));
  tick();
  setInterval(tick, 1000);
  if (!document.activeElement || document.activeElement === document.body) rows()[0]?.focus();
});
