// What every part of the live chat shares: the page, the person, the open
// conversation, sends in flight, and small helpers (times, files, toasts).

export const app = document.querySelector("[data-app][data-user]");
export const me = app ? Number(app.dataset.user) : 0;

export function $(selector, root) { return (root || document).querySelector(selector); }
export function $$(selector, root) { return Array.from((root || document).querySelectorAll(selector)); }

// client_id -> {frame, row, failed, tries}: sent, not yet confirmed (composer.js).
export const pending = new Map();

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Plain http on a LAN address is no secure context: a v4 UUID by hand.
  return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
    (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16));
}

// --- Times, as the server shows them: in the person's own time zone (profile) ---

function formatter(options, locale) {
  try { return new Intl.DateTimeFormat(locale, Object.assign({ timeZone: app && app.dataset.timeZone }, options)); }
  catch (e) { return new Intl.DateTimeFormat(locale, options); } // an unknown time zone
}
export const clock = formatter({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
export const dayName = formatter({ weekday: "long", day: "numeric", month: "long" });
export const isoDay = formatter({ year: "numeric", month: "2-digit", day: "2-digit" }, "en-CA"); // 2024-05-31
const exactParts = formatter({ weekday: "long", day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }, "en-GB");
const shortWeekday = formatter({ weekday: "short" }, "en-GB"); // Tue
const shortDate = formatter({ day: "numeric", month: "short" }, "en-GB"); // 3 Mar
const shortDateYear = formatter({ day: "numeric", month: "short", year: "numeric" }, "en-GB"); // 3 Mar 2024

function parts(date) {
  const p = {};
  exactParts.formatToParts(date).forEach((part) => { p[part.type] = part.value; });
  return p;
}

// "Friday, 4 December 2026, 14:02", as the server writes the title (date:'l, j F Y, H:i').
export function exactTime(date) {
  const p = parts(date);
  return p.weekday + ", " + p.day + " " + p.month + " " + p.year + ", " + p.hour + ":" + p.minute;
}

// "Edited 4 December, 14:02" (date:'j F, H:i').
function editedTime(date) {
  const p = parts(date);
  return "Edited " + p.day + " " + p.month + ", " + p.hour + ":" + p.minute;
}

// Days since the epoch of a moment's calendar day in the person's time zone.
function dayNumber(date) {
  const ymd = isoDay.format(date).split("-");
  return Date.UTC(Number(ymd[0]), Number(ymd[1]) - 1, Number(ymd[2])) / 86400000;
}

// The label next to an author's name: "just now", "5 min", "14:02",
// "Yesterday 14:02", "Tue 14:02" within the week, then "3 Mar 14:02" or "3 Mar 2024".
function relativeTime(date, now) {
  const minutes = Math.floor((now - date) / 60000);
  if (minutes < 1) return "just now"; // a clock a little ahead of the server's too
  if (minutes < 60) return minutes + " min";
  const days = dayNumber(now) - dayNumber(date);
  const time = clock.format(date);
  if (days <= 0) return time;
  if (days === 1) return "Yesterday " + time;
  if (days < 7) return shortWeekday.format(date) + " " + time;
  if (isoDay.format(date).slice(0, 4) === isoDay.format(now).slice(0, 4)) return shortDate.format(date) + " " + time;
  return shortDateYear.format(date);
}

// The message rows in (or being) ``root``.
export function rowsIn(root) {
  return root.matches && root.matches(".msg") ? [root] : $$(".msg", root);
}

// Rows carry their times in UTC (a live row is drawn once for every reader):
// each reader sees them in their own time zone. The time beside the author's
// name shows a relative label (refreshed each minute), every time its exact
// moment as a tooltip.
export function localise(root) {
  const now = new Date();
  rowsIn(root).forEach((row) => {
    const when = new Date(row.dataset.time);
    if (!isNaN(when)) row.dataset.day = isoDay.format(when);
  });
  $$("time.msg__time, time.msg__stamp", root).forEach((t) => {
    const when = new Date(t.getAttribute("datetime"));
    if (isNaN(when)) return;
    const title = exactTime(when);
    if (t.title !== title) t.title = title;
    const label = t.classList.contains("msg__time") ? relativeTime(when, now) : clock.format(when);
    if (t.textContent !== label) t.textContent = label;
  });
  $$(".msg__edited[data-time]", root).forEach((el) => {
    const when = new Date(el.dataset.time);
    if (!isNaN(when)) el.title = editedTime(when);
  });
}

// --- Small things -------------------------------------------------------------

let toastTimer = 0;
export function toast(text) {
  const el = $(".toast") || document.body.appendChild(document.createElement("div"));
  el.className = "toast"; el.setAttribute("role", "status"); el.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.remove(), 5000);
}

export function csrfToken() {
  const field = $("input[name=csrfmiddlewaretoken]");
  if (field && field.value) return field.value;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export function formatSize(bytes) {
  if (bytes < 1024) return bytes + " bytes";
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  return (bytes / 1024 / 1024).toFixed(1) + " MB";
}

function fileKind(ext) {
  if (ext === "pdf") return "pdf";
  if (/^(docx?|odt|rtf|txt|md)$/.test(ext)) return "doc";
  if (/^(xlsx?|ods|csv)$/.test(ext)) return "sheet";
  if (/^(pptx?|odp)$/.test(ext)) return "slides";
  if (/^(png|jpe?g|gif|webp)$/.test(ext)) return "image";
  return "";
}

// The type badge of a file not yet shared (an upload chip, a send in flight).
export function fileIcon(name) {
  const icon = document.createElement("span");
  const ext = name.indexOf(".") > 0 ? name.split(".").pop().toLowerCase() : "";
  icon.className = "file-card__icon file-card__icon--" + (fileKind(ext) || "other");
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = (ext || "file").slice(0, 4).toUpperCase();
  return icon;
}

export function bodyText(row) {
  const body = $("[data-body]", row);
  if (!body) return "";
  const copy = body.cloneNode(true);
  $$(".msg__edited", copy).forEach((el) => el.remove());
  return copy.textContent.trim();
}

// --- The open conversation, or null on other pages -------------------------------

function readChat() {
  const data = document.getElementById("chat-data");
  if (!data) return null;
  const c = JSON.parse(data.textContent);
  const members = {};
  c.members.forEach((p) => { members[p.id] = p; });
  const rows = document.querySelectorAll(".msg[data-seq]");
  // The server marked the page read when it rendered the newest messages.
  const readSeq = c.latest && rows.length ? Number(rows[rows.length - 1].dataset.seq) : 0;
  return Object.assign(c, { members, readSeq, log: $("[data-log]"), scroller: $("[data-scroller]"), setReply: null });
}

export const chat = app ? readChat() : null;

export function isOpenConversation(id) { return chat !== null && chat.conversation === id; }
