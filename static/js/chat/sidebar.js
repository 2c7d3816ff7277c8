// The sidebar's conversation list: order, unread and mention badges, presence
// dots, and the desktop notifications for direct messages and mentions.

import { $, $$, app, chat, isOpenConversation, me } from "./util.js";
import { on } from "./socket.js";

export function sidebarItem(conversationId) { return $('.side-item[data-conversation="' + Number(conversationId) + '"]'); }

export function mentionsMe(m) {
  return m.author.id !== me && !m.deleted && (m.mentions_everyone || (m.mentions || []).indexOf(me) >= 0);
}

// Moves the conversation to the top and counts the message once; returns
// whether the message was new to this page (so it may notify). ``read``: the
// message is read as it arrives (the conversation is open at its bottom).
export function bumpSidebar(conversationId, m, read) {
  const item = sidebarItem(conversationId);
  if (!item) { refreshSidebar(); return m.author.id !== me; }
  if (Number(item.dataset.seq) >= m.seq) return false; // counted already
  item.dataset.seq = String(m.seq);
  const li = item.parentElement;
  li.parentElement.insertBefore(li, li.parentElement.firstElementChild);
  if (m.author.id === me || read) return true;
  const unread = Number($("[data-unread] [data-n]", item).textContent) || 0;
  const mentions = Number($("[data-mentions] [data-n]", item).textContent) || 0;
  setBadges(item, unread + 1, mentions + (item.dataset.kind === "direct" || mentionsMe(m) ? 1 : 0));
  if (item.dataset.muted !== "true") item.classList.add("is-unread");
  return true;
}

export function setBadges(item, unread, mentions) {
  const direct = item.dataset.kind === "direct";
  const muted = item.dataset.muted === "true";
  $("[data-unread] [data-n]", item).textContent = String(unread);
  $("[data-mentions] [data-n]", item).textContent = String(mentions);
  $("[data-unread]", item).hidden = !unread || direct || muted;
  $("[data-mentions]", item).hidden = !mentions;
  if (!unread) item.classList.remove("is-unread");
}

export function hasUnreadBadge(item) {
  return !!item && (item.classList.contains("is-unread") || !$("[data-unread]", item).hidden || !$("[data-mentions]", item).hidden);
}

let sidebarTimer = 0;
export function refreshSidebar() {
  // A conversation appeared or went: fetch the list again (htmx swaps it in).
  clearTimeout(sidebarTimer);
  sidebarTimer = setTimeout(() => {
    const url = app.dataset.sidebarUrl + (chat ? "?current=" + chat.conversation : "");
    if (window.htmx) window.htmx.ajax("GET", url, { target: "#sidebar-conversations", swap: "outerHTML" });
  }, 250);
}

function setPresence(userId, online) {
  $$('[data-presence="' + Number(userId) + '"]').forEach((dot) => dot.classList.toggle("is-online", !!online));
}
on("presence", (frame) => setPresence(frame.user, frame.online));

// --- Notifications ----------------------------------------------------------

export function notify(conversationId, m) {
  if (!("Notification" in window) || Notification.permission !== "granted" || m.author.id === me) return;
  const item = sidebarItem(conversationId);
  const direct = item ? item.dataset.kind === "direct" : isOpenConversation(conversationId) && chat.kind === "direct";
  const muted = item && item.dataset.muted === "true";
  if (!(direct && !muted) && !mentionsMe(m)) return;
  if (isOpenConversation(conversationId) && !document.hidden) return;
  const where = item ? $("[data-label]", item).textContent : chat.title;
  const note = new Notification(direct ? m.author.name : m.author.name + " in " + where, {
    body: m.body.length > 180 ? m.body.slice(0, 179) + "…" : m.body,
    tag: "kontor-" + conversationId, // one notification per conversation, the latest
  });
  note.addEventListener("click", () => { window.focus(); location.href = "/c/" + conversationId + "/"; note.close(); });
}
