// The composer: Enter sends over the socket (or the form posts the plain way),
// typing notices, replies, and the row of a send in flight until the
// server's row replaces it.

import { $, bodyText, chat, fileIcon, formatSize, localise, pending, toast, uuid } from "./util.js";
import { isOpen, on, send } from "./socket.js";
import { addDayDivider, keepingPosition, personalise, scrollToBottom } from "./conversation.js";
import { setUpAttachments } from "./uploads.js";

let lastTypingSent = 0;

export function setUpComposer() {
  const form = $("[data-composer]");
  if (!form) return;
  const input = $("[data-composer-input]", form);
  const replyInput = $("input[name=reply_to]", form);

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    // The server relays one per 2 s; a keystroke while the socket is still connecting
    // does not count, so the next one tells the others.
    if (input.value.trim() && Date.now() - lastTypingSent > 3000 &&
        send({ type: "typing", conversation: chat.conversation })) {
      lastTypingSent = Date.now();
    }
  });
  const attachments = setUpAttachments(form, input);
  form.addEventListener("submit", (event) => {
    const attach = $("[data-attach]", form);
    if (attach && attach.files && attach.files.length) return; // files go with the plain form post
    if (attachments.busy()) { event.preventDefault(); attachments.explain(); return; }
    const files = attachments.ready();
    const body = input.value.trim();
    if (!body && !files.length) { event.preventDefault(); return; }
    if (Array.from(body).length > chat.maxChars) {
      event.preventDefault();
      toast("Messages are limited to " + chat.maxChars.toLocaleString() + " characters; this one has " + Array.from(body).length.toLocaleString() + ".");
      return;
    }
    // No socket: the form posts the plain way, with the client_id the server
    // rendered into it, so a double submit still sends once. Files uploaded
    // already can only go over the socket: such a send waits for it.
    if (!isOpen() && !files.length) return;
    event.preventDefault();
    const clientId = uuid(); // a fresh one per send
    const frame = { type: "send", conversation: chat.conversation, body, client_id: clientId };
    if (replyInput.value) frame.reply_to = Number(replyInput.value);
    if (files.length) frame.files = files.map((f) => f.id);
    pending.set(clientId, { frame, row: addPendingRow(frame, files) });
    if (!send(frame)) $("[data-status-text]", pending.get(clientId).row).textContent = "Waiting for the connection…";
    attachments.clear();
    input.value = "";
    lastTypingSent = 0;
    setReply(null);
    scrollToBottom();
  });

  // Replying: the preview above the composer and the hidden reply_to field.
  function setReply(row) {
    const preview = $("[data-reply-preview]", form);
    replyInput.value = row ? row.dataset.id : "";
    preview.hidden = !row;
    if (!row) return;
    $("[data-reply-author]", preview).textContent = $(".msg__author", row).textContent;
    $("[data-reply-text]", preview).textContent = bodyText(row).slice(0, 120);
    input.focus();
  }
  chat.setReply = setReply;
  $("[data-reply-cancel]", form).addEventListener("click", (event) => { event.preventDefault(); setReply(null); });
}

// A send in flight: the page's own row skeleton (drawn by the server from
// messenger/_message.html), the text as typed and the files' names and sizes,
// not yet links (the download view lets nobody fetch a file before it is shared).
function addPendingRow(frame, files) {
  const row = $("#pending-template").content.firstElementChild.cloneNode(true);
  const now = new Date().toISOString();
  row.dataset.clientId = frame.client_id;
  row.dataset.time = now;
  row.querySelectorAll("time").forEach((t) => t.setAttribute("datetime", now));
  $("[data-body]", row).textContent = frame.body; // shown as typed until the server's rendering arrives
  const box = $("[data-files]", row);
  box.hidden = files.length === 0;
  files.forEach((f) => {
    const card = document.createElement("span");
    card.className = "file-card file-card--pending";
    card.append(fileIcon(f.name));
    const text = document.createElement("span");
    text.className = "file-card__text";
    const name = document.createElement("span");
    name.className = "file-card__name";
    name.textContent = f.name;
    const meta = document.createElement("span");
    meta.className = "file-card__meta";
    meta.textContent = formatSize(f.size);
    text.append(name, meta);
    card.append(text);
    box.appendChild(card);
  });
  $("[data-retry]", row).addEventListener("click", () => {
    // The same client_id again: if the first try did arrive, this changes nothing.
    pending.get(frame.client_id).failed = false;
    if (!send(frame)) toast("Still offline. It goes out when the connection is back.");
    row.classList.remove("msg--failed");
    $("[data-status-text]", row).textContent = "Sending…";
    $("[data-retry]", row).hidden = true;
  });
  personalise(row);
  localise(row);
  keepingPosition(() => { chat.log.appendChild(row); addDayDivider(row); });
  return row;
}

on("ack", (frame) => {
  const entry = pending.get(frame.client_id);
  if (!entry) return;
  // A duplicate's message is on the page already (or arrives with the resume).
  if (document.getElementById("m" + frame.message)) { entry.row.remove(); pending.delete(frame.client_id); }
});

on("error", (frame) => {
  const entry = frame.client_id && pending.get(frame.client_id);
  if (entry && frame.code === "unavailable" && (entry.tries = (entry.tries || 0) + 1) <= 5) {
    // The server could not store it just now (a restart): the same frame again, a little later.
    setTimeout(() => { if (pending.has(frame.client_id)) send(entry.frame); }, 1000 * entry.tries);
    return;
  }
  if (!entry) { toast(frame.detail); return; }
  entry.failed = true;
  entry.row.classList.add("msg--failed");
  $("[data-status-text]", entry.row).textContent = "Not sent: " + frame.detail;
  $("[data-retry]", entry.row).hidden = false;
});
