// The page's one websocket (docs/protocol.md): connects, resumes from the last
// mark after every (re)connect, and hands each frame to the parts that asked
// for its type.
//
// Every event may arrive twice (a resume after a reconnect replays from the
// last mark, and the page itself was drawn slightly before the id it resumes
// from): a journal event already shown is dropped here, by its id.

import { $, app, pending } from "./util.js";

// The resume point: every event up to it has been shown (the page was drawn
// from it, or the server said "synced"). Never the highest id seen: an event
// of another server process may still be on its way below that.
let lastEvent = Number(app.dataset.event) || 0;
const shownEvents = new Set(); // ids above lastEvent already shown (a replay repeats them)
let socket = null;
let retries = 0;
let retryTimer = 0;
const handlers = {}; // frame type -> [handler]

const JOURNAL_FRAMES = { message: 1, message_edited: 1, message_deleted: 1, reaction: 1, membership: 1, conversation: 1 };

export function on(type, handler) { (handlers[type] = handlers[type] || []).push(handler); }

export function isOpen() { return socket !== null && socket.readyState === WebSocket.OPEN; }
export function send(frame) { return isOpen() && (socket.send(JSON.stringify(frame)), true); }

// The connection's state, shown once it has been down for a moment (a
// reconnect that takes under two seconds is not worth a flicker).
const connection = { el: $("[data-connection]"), timer: 0, shown: false };

function showConnection(state) {
  const el = connection.el;
  if (!el) return;
  clearTimeout(connection.timer);
  if (state === "online") {
    if (!connection.shown) return;
    connection.shown = false;
    el.dataset.state = "online";
    $("[data-connection-text]", el).textContent = "Connected again.";
    connection.timer = setTimeout(() => { el.hidden = true; }, 2000);
    return;
  }
  const text = state === "offline"
    ? "You are offline. Messages you write go out when the connection is back."
    : "Reconnecting… Messages you write go out when the connection is back.";
  const reveal = () => {
    connection.shown = true;
    el.dataset.state = state;
    $("[data-connection-text]", el).textContent = text;
    el.hidden = false;
  };
  if (connection.shown || state === "offline") reveal(); else connection.timer = setTimeout(reveal, 2000);
}

window.addEventListener("offline", () => showConnection("offline"));
window.addEventListener("online", () => {
  // The browser says the network is back: try now instead of waiting out the backoff.
  if (!socket) { retries = 0; clearTimeout(retryTimer); connect(); }
  if (!isOpen()) showConnection("reconnecting");
});

export function connect() {
  socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/");
  socket.addEventListener("open", () => {
    retries = 0;
    app.dataset.socket = "open";
    showConnection("online");
    send({ type: "resume", after: lastEvent });
    // Sends that never got an answer go again: the client_id makes them idempotent.
    pending.forEach((entry) => { if (!entry.failed) send(entry.frame); });
  });
  socket.addEventListener("message", (event) => handle(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    socket = null;
    app.dataset.socket = "closed";
    if (event.code === 4401 || event.code === 4403) { location.href = app.dataset.loginUrl; return; }
    // Back off exponentially, with jitter, so a restarted server is not stampeded.
    const delay = Math.min(30000, 1000 * Math.pow(2, retries++)) * (0.5 + Math.random() / 2);
    showConnection(navigator.onLine === false ? "offline" : "reconnecting");
    retryTimer = setTimeout(connect, delay);
  });
}

function advanceMark(event) {
  if (!(event > lastEvent)) return;
  lastEvent = event;
  shownEvents.forEach((id) => { if (id <= event) shownEvents.delete(id); });
}

function handle(frame) {
  if (JOURNAL_FRAMES[frame.type] && frame.event) {
    if (frame.event <= lastEvent || shownEvents.has(frame.event)) return; // shown already
    shownEvents.add(frame.event);
  }
  switch (frame.type) {
    case "synced":
    case "resumed": advanceMark(frame.event); return;
    case "resync": location.reload(); return;
    case "account_disabled": location.href = app.dataset.loginUrl; return;
  }
  (handlers[frame.type] || []).forEach((handler) => handler(frame));
}
