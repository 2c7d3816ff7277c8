// The conversation's own keys (the help dialog lists them; kontor.js has the
// page-wide ones): Esc marks it read, Up in the empty composer edits one's
// last message.

import { $, $$, app, chat } from "./util.js";
import { isOpen } from "./socket.js";
import { markAllRead, openEditor } from "./conversation.js";

export function setUpShortcuts() {
  // Capture: decide before other handlers close a menu or picker on the same Esc.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented || event.isComposing) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return;
    if ($("dialog[open]") || $(".editor", chat.log) || $("details.picker[open], details.user-menu[open]")) return;
    if (app.classList.contains("app--nav-open")) return;
    const target = event.target;
    const composer = $("[data-composer-input]");
    if (target && target.closest && target.closest("input, textarea, select, [contenteditable]") && target !== composer) return;
    const preview = $("[data-reply-preview]");
    if (target === composer && preview && !preview.hidden && chat.setReply) { chat.setReply(null); return; } // Esc drops the reply first
    markAllRead();
  }, true);

  const input = $("[data-composer-input]");
  if (!input) return;
  input.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowUp" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
    if (input.value !== "") return;
    const mine = $$(".msg.msg--mine[data-source][data-id]", chat.log);
    const row = mine[mine.length - 1];
    if (!row) return;
    event.preventDefault();
    const link = $('[data-action="edit"]', row);
    if (!isOpen()) { if (link) location.href = link.href; return; } // the edit page works without the socket
    openEditor(row, input);
    const editor = $(".editor", row);
    if (editor) editor.scrollIntoView({ block: "nearest" });
  });
}
