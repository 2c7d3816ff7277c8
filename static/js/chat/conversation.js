// The open conversation: live rows, reactions, "seen by", typing, reading,
// and the actions on a message (reply, react, edit, delete).
//
// A row is drawn by the server only (messenger/_message.html): the page's
// rows came with it, a live event carries the row the server rendered for it,
// an edit or deletion carries the row as it is now. Here a row is only placed
// and marked for its reader (own message, mention, own reactions, times in the
// reader's time zone): the same marks on a page's row and on a live one, so a
// live row and a reloaded row are the same.
// Server HTML goes in as HTML; everything else (names, notices) as text.

import { $, $$, chat, csrfToken, dayName, isOpenConversation, isoDay, localise, me, pending, rowsIn, toast } from "./util.js";
import { isOpen, on, send } from "./socket.js";
import { bumpSidebar, hasUnreadBadge, notify, refreshSidebar, setBadges, sidebarItem } from "./sidebar.js";

const TYPING_SHOWN_MS = 5000;
const typers = new Map(); // user id -> {name, until}
const names = {}; // user id -> name, for "seen by"

// --- A row, marked for its reader ------------------------------------------------

export function rowFrom(html) {
  const holder = document.createElement("template");
  holder.innerHTML = html.trim(); // drawn by the server (messenger/_message.html)
  return holder.content.firstElementChild;
}

function markReaction(button) {
  const mine = usersOf(button).indexOf(me) >= 0;
  button.classList.toggle("is-mine", mine);
  button.setAttribute("aria-pressed", String(mine));
  // Without the socket, the pill's form posts: it removes one's own reaction.
  const remove = $("input[name=remove]", button.form);
  if (remove) remove.disabled = !mine;
}

// What the server cannot know when it draws a row once for everyone: whose
// page it is on. Also the forms' CSRF token (a live row has none) for when
// they post without the socket.
export function personalise(root) {
  rowsIn(root).forEach((row) => {
    const mine = Number(row.dataset.author) === me;
    $$('.mention[data-user-id="' + me + '"]', row).forEach((el) => el.classList.add("is-me"));
    const mention = !mine && !row.classList.contains("msg--deleted") &&
      !!$("[data-body] .mention.is-me, [data-body] .mention--everyone", row);
    row.classList.toggle("msg--mention", mention);
    row.classList.toggle("msg--mine", mine);
    $$(".reaction", row).forEach(markReaction);
    $$('form[method="post"]', row).forEach((form) => {
      if ($("input[name=csrfmiddlewaretoken]", form)) return;
      const token = document.createElement("input");
      token.type = "hidden"; token.name = "csrfmiddlewaretoken"; token.value = csrfToken();
      form.prepend(token);
    });
  });
}

export function prepare(row) { personalise(row); localise(row); return row; }

// --- Placing rows -------------------------------------------------------------

function atBottom() { return Math.abs(chat.scroller.scrollTop) < 80; } // column-reverse: 0 is the bottom
export function scrollToBottom() { chat.scroller.scrollTop = 0; $("[data-jump]").hidden = true; }

// Change the log without moving what the reader looks at, unless at the bottom.
export function keepingPosition(change) {
  const stick = atBottom();
  const anchor = $(".msg", chat.log);
  const top = anchor && anchor.getBoundingClientRect().top;
  change();
  if (stick) chat.scroller.scrollTop = 0;
  else if (anchor) chat.scroller.scrollTop += anchor.getBoundingClientRect().top - top;
  return stick;
}

function insertMessage(m) {
  if (document.getElementById("m" + m.id)) return false; // seen already
  if (!chat.latest) return false; // an older slice is shown: this would leave a gap
  const row = prepare(rowFrom(m.row));
  const stuck = keepingPosition(() => placeBySeq(row, m.seq));
  if (!stuck && m.author.id !== me) $("[data-jump]").hidden = false;
  return true;
}

// Rows are kept in sequence order; unconfirmed sends stay at the very end.
function placeBySeq(row, seq) {
  const rows = $$(".msg[data-seq]", chat.log);
  let before = null;
  for (let i = rows.length - 1; i >= 0; i--) {
    if (Number(rows[i].dataset.seq) < seq) { before = rows[i]; break; }
  }
  let next = before ? nextRow(before) : $(".msg", chat.log);
  // A divider belongs to the row after it, so go in front of it.
  while (next && next.previousElementSibling && next.previousElementSibling.matches(".day-divider, .new-divider")) next = next.previousElementSibling;
  chat.log.insertBefore(row, next); // null: at the end
  addDayDivider(row);
}

// The message row after (or before) another, skipping dividers.
function nextRow(row, back) {
  const step = back ? "previousElementSibling" : "nextElementSibling";
  let el = row && row[step];
  while (el && !el.classList.contains("msg")) el = el[step];
  return el;
}

export function addDayDivider(row) {
  const prev = nextRow(row, true);
  if (!row.dataset.day || (prev && prev.dataset.day === row.dataset.day)) return;
  if (row.previousElementSibling && row.previousElementSibling.matches(".day-divider")) return;
  const divider = $("#divider-template").content.firstElementChild.cloneNode(true);
  divider.dataset.day = row.dataset.day;
  divider.firstElementChild.textContent = row.dataset.day === isoDay.format(new Date()) ? "Today" : dayName.format(new Date(row.dataset.time));
  chat.log.insertBefore(divider, row);
}

// --- Events -------------------------------------------------------------------

function willBeRead() { return chat.latest && !document.hidden && atBottom(); }

on("message", (frame) => {
  const conversationId = frame.conversation;
  const m = frame.message;
  names[m.author.id] = m.author.name;
  const here = isOpenConversation(conversationId);
  let fresh = bumpSidebar(conversationId, m, here && willBeRead());
  if (here) {
    typers.delete(m.author.id);
    renderTyping();
    const entry = m.client_id && pending.get(m.client_id);
    if (entry) { entry.row.remove(); pending.delete(m.client_id); }
    fresh = insertMessage(m) || fresh;
    if (m.author.id !== me) {
      if (chat.seenBy) moveSeen(m.author.id, m.seq); // writing implies having read
      markLatestRead();
    }
  }
  if (fresh) notify(conversationId, m);
});

// An edit or a deletion: the server's row as it is now takes the old one's place.
function onMessageChanged(frame) {
  const m = frame.message;
  const old = isOpenConversation(frame.conversation) && document.getElementById("m" + m.id);
  if (!old) return;
  const row = prepare(rowFrom(m.row));
  // "Seen by" follows the readers' markers, which this page keeps (read frames).
  const seen = $("[data-seen]", old);
  const fresh = $("[data-seen]", row);
  if (seen && fresh) fresh.replaceWith(seen);
  old.replaceWith(row);
  if (m.deleted) {
    $$('[data-quote="' + m.id + '"] .msg__quote-text').forEach((el) => { el.textContent = "This message was deleted."; });
  }
}
on("message_edited", onMessageChanged);
on("message_deleted", onMessageChanged);

on("reaction", (frame) => {
  names[frame.user.id] = frame.user.name;
  const row = isOpenConversation(frame.conversation) && document.getElementById("m" + frame.message);
  const pills = row && $("[data-reactions]", row);
  if (!pills) return;
  pills.replaceWith(rowFrom(frame.reactions)); // the message's pills as they are now
  personalise(row);
});

on("membership", (frame) => {
  const user = frame.user;
  const gone = frame.change === "left" || frame.change === "removed";
  const here = isOpenConversation(frame.conversation);
  if (user.id === me && gone && here) {
    toast("You are no longer a member of this conversation.");
    setTimeout(() => { location.href = "/"; }, 1500);
  } else if (user.id === me) {
    refreshSidebar();
  } else if (here && user.external) {
    externalsChanged();
  } else if (here && gone && chat.kind === "direct") {
    // The other person left the company: the page shows why nobody can write here now.
    location.reload();
  } else if (here) {
    if (gone) delete chat.members[user.id];
    else chat.members[user.id] = { id: user.id, name: user.name, initials: user.initials };
    $("[data-member-count]").textContent = String(Object.keys(chat.members).length);
  } else if (gone && user.left) {
    refreshSidebar(); // a direct conversation's title now says "(left the company)"
  }
});

// Who takes part from outside the company must always be visible (the banner
// is drawn by the server): reload, unless that would throw away a draft.
function externalsChanged() {
  const input = $("[data-composer-input]");
  if (input && input.value.trim()) toast("External participants changed: reload the page to see who is here.");
  else location.reload();
}

on("conversation", (frame) => {
  if (frame.change === "created") { refreshSidebar(); return; }
  if (frame.change === "externals" && isOpenConversation(frame.conversation)) { externalsChanged(); return; }
  if (frame.change === "archived" && isOpenConversation(frame.conversation)) { location.reload(); return; }
  const item = sidebarItem(frame.conversation);
  if (frame.change === "renamed") {
    if (item && frame.name) $("[data-label]", item).textContent = frame.name;
    else refreshSidebar();
    if (isOpenConversation(frame.conversation) && frame.name) $("[data-conversation-title]").textContent = frame.name;
  }
  if (frame.change === "topic" && isOpenConversation(frame.conversation)) {
    const topic = $("[data-conversation-topic]");
    topic.textContent = frame.topic || "";
    topic.hidden = !frame.topic;
  }
});

on("typing", (frame) => {
  if (!isOpenConversation(frame.conversation) || frame.user.id === me) return;
  typers.set(frame.user.id, { name: frame.user.name, until: Date.now() + TYPING_SHOWN_MS });
  renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
});

function renderTyping() {
  const box = $("[data-typing]");
  if (!box) return;
  const now = Date.now();
  const who = [];
  typers.forEach((t, id) => { if (t.until > now) who.push(t.name); else typers.delete(id); });
  box.textContent = who.length === 0 ? "" : who.length === 1 ? who[0] + " is typing…"
    : who.length === 2 ? who[0] + " and " + who[1] + " are typing…" : "Several people are typing…";
}

on("read", (frame) => {
  if (frame.user === me) {
    // Read in another tab of mine: the badges go.
    const item = sidebarItem(frame.conversation);
    if (item && frame.seq >= Number(item.dataset.seq)) setBadges(item, 0, 0);
    return;
  }
  if (isOpenConversation(frame.conversation) && chat.seenBy) moveSeen(frame.user, frame.seq);
});

// --- Reactions and "seen by" ------------------------------------------------

function pillFor(row, emoji) {
  return $$(".reaction", row).filter((b) => b.dataset.emoji === emoji)[0] || null;
}
function usersOf(el) {
  return el ? el.dataset.users.split(" ").filter(Boolean).map(Number) : [];
}

export function personName(id) {
  return (chat.members[id] && chat.members[id].name) || names[id] || "Someone";
}

function moveSeen(userId, seq) {
  let target = null;
  $$(".msg[data-seq]", chat.log).forEach((row) => { if (Number(row.dataset.seq) <= seq) target = row; });
  $$("[data-seen]", chat.log).forEach((seen) => {
    let users = usersOf(seen);
    const here = seen.closest(".msg") === target && target.dataset.author !== String(userId);
    if (here === (users.indexOf(userId) >= 0)) return;
    users = here ? users.concat([userId]) : users.filter((id) => id !== userId);
    seen.dataset.users = users.join(" ");
    seen.textContent = users.length ? "Seen by " + users.map(personName).join(", ") : "";
    seen.hidden = !users.length;
  });
}

// --- Reading ----------------------------------------------------------------

// Tell the server (and, through it, "seen by") once the newest message is on
// screen; at most once per message, since scrolling fires often and frames are rate limited.
function markLatestRead() {
  const rows = $$(".msg[data-seq]", chat.log);
  const last = rows[rows.length - 1];
  if (!last || !willBeRead() || Number(last.dataset.seq) <= chat.readSeq) return;
  chat.readSeq = Number(last.dataset.seq);
  send({ type: "read", conversation: chat.conversation, message: Number(last.dataset.id) });
  clearOwnBadges(chat.readSeq);
}

function clearOwnBadges(seq) {
  const item = sidebarItem(chat.conversation);
  if (item && (seq === null || seq >= Number(item.dataset.seq))) setBadges(item, 0, 0);
}

// Esc: the whole conversation is read, wherever one has scrolled to.
export function markAllRead() {
  const item = sidebarItem(chat.conversation);
  const rows = $$(".msg[data-seq]", chat.log);
  const last = rows[rows.length - 1];
  const behind = hasUnreadBadge(item) || (!!last && Number(last.dataset.seq) > chat.readSeq);
  if (!behind) return;
  if (!isOpen()) { location.href = "/c/" + chat.conversation + "/"; return; } // the page marks it read
  const frame = { type: "read", conversation: chat.conversation };
  // The newest message shown, or, on an older slice, everything there is.
  if (chat.latest && last) frame.message = Number(last.dataset.id);
  if (last) chat.readSeq = Math.max(chat.readSeq, Number(last.dataset.seq));
  send(frame);
  clearOwnBadges(chat.latest ? chat.readSeq : null);
  toast("Marked as read.");
}

// --- Actions on messages ------------------------------------------------------

export function openEditor(row, returnTo) {
  if ($(".editor", row) || !row.dataset.source) return;
  const editor = $("#editor-template").content.firstElementChild.cloneNode(true);
  const body = $("[data-body]", row);
  const textarea = $("textarea", editor);
  editor.setAttribute("action", editor.getAttribute("action").replace("/m/0/", "/m/" + row.dataset.id + "/"));
  textarea.value = row.dataset.source;
  body.hidden = true;
  body.after(editor);
  textarea.focus();
  textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  function close() {
    editor.remove();
    body.hidden = false;
    if (returnTo && document.contains(returnTo)) returnTo.focus(); // back to the composer (Up)
  }
  $("[data-edit-cancel]", editor).addEventListener("click", close);
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); close(); }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); editor.requestSubmit(); }
  });
  editor.addEventListener("submit", (event) => {
    if (!isOpen()) return; // posts to /m/<id>/edit/
    event.preventDefault();
    const text = textarea.value.trim();
    if (text && text !== row.dataset.source) send({ type: "edit", message: Number(row.dataset.id), body: text });
    close();
  });
}

function setUpMessageActions() {
  chat.log.addEventListener("click", (event) => {
    const action = event.target.closest("[data-action]");
    const row = event.target.closest(".msg");
    if (!action) {
      // On touch screens, a tap on a message shows its actions.
      if (row && !event.target.closest("a, button, summary, textarea, form")) {
        $$(".msg.is-active", chat.log).forEach((r) => { if (r !== row) r.classList.remove("is-active"); });
        row.classList.toggle("is-active");
      }
      return;
    }
    if (!row || !row.dataset.id) return;
    const kind = action.dataset.action;
    if (kind === "reply" && chat.setReply) { event.preventDefault(); chat.setReply(row); return; }
    if (!isOpen()) return; // the link leads to the page that does it without script
    event.preventDefault();
    if (kind === "edit") openEditor(row);
    if (kind === "delete" && window.confirm("Delete this message? Everyone will see that it was deleted.")) {
      send({ type: "delete", message: Number(row.dataset.id) });
    }
  });

  chat.log.addEventListener("submit", (event) => {
    const form = event.target;
    const row = form.closest(".msg");
    if (!row || !form.matches(".picker__panel, .reaction-form") || !isOpen()) return;
    event.preventDefault();
    const emoji = event.submitter && event.submitter.name === "emoji" ? event.submitter.value : $("input[name=emoji]", form).value;
    const mine = usersOf(pillFor(row, emoji)).indexOf(me) >= 0;
    send({ type: "react", message: Number(row.dataset.id), emoji, remove: mine });
    const picker = form.closest("details");
    if (picker) picker.open = false;
  });

  // Older messages arrive through htmx: join them up with what was there.
  chat.log.addEventListener("htmx:afterSwap", () => {
    prepare(chat.log);
    $$(".msg", chat.log).forEach((row) => {
      const first = row.previousElementSibling;
      const prev = nextRow(row, true);
      if (first && first.matches(".day-divider") && prev && prev.dataset.day === row.dataset.day) first.remove();
    });
  });

  chat.scroller.addEventListener("scroll", () => {
    if (atBottom()) { $("[data-jump]").hidden = true; markLatestRead(); }
  }, { passive: true });
  $("[data-jump]").addEventListener("click", scrollToBottom);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) markLatestRead(); });
}

function setUpNotifyButton() {
  const button = $("[data-notify-button]");
  if (!button || !("Notification" in window)) return;
  button.hidden = Notification.permission !== "default";
  button.addEventListener("click", () => {
    Notification.requestPermission().then((answer) => {
      button.hidden = true;
      toast(answer === "granted" ? "Desktop notifications are on for direct messages and mentions."
        : "Notifications stay off. You can change this in your browser's site settings.");
    });
  });
}

export function setUpConversation() {
  prepare(chat.log);
  setUpMessageActions();
  setUpNotifyButton();
  setInterval(() => localise(chat.log), 60000);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) localise(chat.log); });
}
