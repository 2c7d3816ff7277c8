// Kontor's live chat: one websocket per tab (docs/protocol.md), loaded as
// ES modules by the app layout, one per concern:
//   util.js          the page, the person, the open conversation, small helpers
//   socket.js        the connection, the resume mark, frames to handlers
//   sidebar.js       the conversation list's order and badges, notifications
//   conversation.js  the open conversation's rows and the actions on them
//   composer.js      sending, replies, the row of a send in flight
//   uploads.js       attachments
//   shortcuts.js     the conversation's keys
//
// Every page works without this script through plain form posts. With it, the
// composer, reactions, edits and deletions go over the socket, and the socket's
// events keep the open conversation and the sidebar's badges live.

import { $$, app, chat } from "./util.js";
import { connect } from "./socket.js";
import "./sidebar.js";
import { setUpConversation } from "./conversation.js";
import { setUpComposer } from "./composer.js";
import { setUpShortcuts } from "./shortcuts.js";

// Pages with people pickers: filter the list as one types.
function setUpFilters() {
  $$("[data-filter-list]").forEach((list) => {
    const input = list.querySelector("[data-filter-input]");
    const items = $$("[data-filter-item]", list);
    input.hidden = false;
    input.addEventListener("input", () => {
      const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      items.forEach((item) => {
        const text = item.dataset.filterText.toLowerCase();
        item.hidden = !words.every((w) => text.indexOf(w) >= 0);
      });
      list.querySelector("[data-filter-none]").hidden = items.some((item) => !item.hidden);
    });
  });
}

if (app && "WebSocket" in window) {
  // Close an open reaction picker when clicking elsewhere or pressing Escape.
  document.addEventListener("click", (event) => {
    $$("details.picker[open]").forEach((d) => { if (!d.contains(event.target)) d.open = false; });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") $$("details.picker[open]").forEach((d) => { d.open = false; });
  });
  setUpFilters();
  if (chat) {
    setUpComposer();
    setUpConversation();
    setUpShortcuts();
  }
  connect();
}
