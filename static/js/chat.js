// Kontor's live chat: one websocket per tab (docs/protocol.md).
//
// Every page works without this script through plain form posts. With it, the
// composer, reactions, edits and deletions go over the socket, and the socket's
// events keep the open conversation and the sidebar's badges live.
//
// Rules kept throughout:
// - Message HTML (message.html) is sanitised on the server and inserted as HTML;
//   everything else (names, bodies of quotes, notices) goes in with textContent.
// - Every event may arrive twice (a resume after a reconnect replays from the
//   last id this page saw, and the page itself was rendered slightly before the
//   id it resumes from), so each handler is idempotent: messages by id, sidebar
//   counts by sequence number, reactions and "seen by" by person.
(function () {
  "use strict";

  var app = document.querySelector("[data-app][data-user]");
  if (!app || !("WebSocket" in window)) return;

  var me = Number(app.dataset.user);
  // The resume point: every event up to it has been shown (the page was drawn
  // from it, or the server said "synced"). Never the highest id seen: an
  // event of another server process may still be on its way below that.
  var lastEvent = Number(app.dataset.event) || 0;
  var shownEvents = new Set(); // ids above lastEvent already shown (a replay repeats them)
  var chat = readChat(); // the open conversation, or null on other pages
  var socket = null;
  var retries = 0;
  var pending = new Map(); // client_id -> {frame, row}: sent, not yet confirmed
  var typers = new Map(); // user id -> {name, until}
  var names = {}; // user id -> name, for reaction tooltips and "seen by"
  var lastTypingSent = 0;
  var RUN_GAP_MS = 5 * 60 * 1000;
  var TYPING_SHOWN_MS = 5000;

  // --- Small helpers --------------------------------------------------------

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // Plain http on a LAN address is no secure context: a v4 UUID by hand.
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (c) {
      return (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
    });
  }

  // Times as the server shows them: in the person's own time zone (profile).
  function formatter(options, locale) {
    try { return new Intl.DateTimeFormat(locale, Object.assign({ timeZone: app.dataset.timeZone }, options)); }
    catch (e) { return new Intl.DateTimeFormat(locale, options); } // an unknown time zone
  }
  var clock = formatter({ hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  var dayName = formatter({ weekday: "long", day: "numeric", month: "long" });
  var isoDay = formatter({ year: "numeric", month: "2-digit", day: "2-digit" }, "en-CA"); // 2024-05-31
  var exactParts = formatter({ weekday: "long", day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }, "en-GB");
  var shortWeekday = formatter({ weekday: "short" }, "en-GB"); // Tue
  var shortDate = formatter({ day: "numeric", month: "short" }, "en-GB"); // 3 Mar
  var shortDateYear = formatter({ day: "numeric", month: "short", year: "numeric" }, "en-GB"); // 3 Mar 2024

  // "Friday, 4 December 2026, 14:02", as the server writes the title (date:'l, j F Y, H:i').
  function exactTime(date) {
    var p = {};
    exactParts.formatToParts(date).forEach(function (part) { p[part.type] = part.value; });
    return p.weekday + ", " + p.day + " " + p.month + " " + p.year + ", " + p.hour + ":" + p.minute;
  }

  // Days since the epoch of a moment's calendar day in the person's time zone.
  function dayNumber(date) {
    var ymd = isoDay.format(date).split("-");
    return Date.UTC(Number(ymd[0]), Number(ymd[1]) - 1, Number(ymd[2])) / 86400000;
  }

  // The label next to an author's name: "just now", "5 min", "14:02",
  // "Yesterday 14:02", "Tue 14:02" within the week, then "3 Mar 14:02" or "3 Mar 2024".
  function relativeTime(date, now) {
    var minutes = Math.floor((now - date) / 60000);
    if (minutes < 1) return "just now"; // a clock a little ahead of the server's too
    if (minutes < 60) return minutes + " min";
    var days = dayNumber(now) - dayNumber(date);
    var time = clock.format(date);
    if (days <= 0) return time;
    if (days === 1) return "Yesterday " + time;
    if (days < 7) return shortWeekday.format(date) + " " + time;
    if (isoDay.format(date).slice(0, 4) === isoDay.format(now).slice(0, 4)) return shortDate.format(date) + " " + time;
    return shortDateYear.format(date);
  }

  // Every message time gets its exact moment as a tooltip; those beside the
  // author's name show a relative label (refreshed each minute).
  function labelTimes(root) {
    var now = new Date();
    $$("time.msg__time, time.msg__stamp", root).forEach(function (t) {
      var when = new Date(t.getAttribute("datetime"));
      if (isNaN(when)) return;
      if (!t.title) t.title = exactTime(when);
      if (t.classList.contains("msg__time")) {
        var label = relativeTime(when, now);
        if (t.textContent !== label) t.textContent = label;
      }
    });
  }

  function toast(text) {
    var el = $(".toast") || document.body.appendChild(document.createElement("div"));
    el.className = "toast"; el.setAttribute("role", "status"); el.textContent = text;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.remove(); }, 5000);
  }

  function mentionsMe(m) {
    return m.author.id !== me && !m.deleted && (m.mentions_everyone || (m.mentions || []).indexOf(me) >= 0);
  }

  // --- The socket -------------------------------------------------------------

  // The connection's state, shown once it has been down for a moment (a
  // reconnect that takes under two seconds is not worth a flicker).
  var connection = { el: $("[data-connection]"), timer: 0, shown: false };

  function showConnection(state) {
    var el = connection.el;
    if (!el) return;
    clearTimeout(connection.timer);
    if (state === "online") {
      if (!connection.shown) return;
      connection.shown = false;
      el.dataset.state = "online";
      $("[data-connection-text]", el).textContent = "Connected again.";
      connection.timer = setTimeout(function () { el.hidden = true; }, 2000);
      return;
    }
    var text = state === "offline"
      ? "You are offline. Messages you write go out when the connection is back."
      : "Reconnecting… Messages you write go out when the connection is back.";
    var reveal = function () {
      connection.shown = true;
      el.dataset.state = state;
      $("[data-connection-text]", el).textContent = text;
      el.hidden = false;
    };
    if (connection.shown || state === "offline") reveal(); else connection.timer = setTimeout(reveal, 2000);
  }

  window.addEventListener("offline", function () { showConnection("offline"); });
  window.addEventListener("online", function () {
    // The browser says the network is back: try now instead of waiting out the backoff.
    if (!socket) { retries = 0; clearTimeout(connect.timer); connect(); }
    if (!isOpen()) showConnection("reconnecting");
  });

  function connect() {
    socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/");
    socket.addEventListener("open", function () {
      retries = 0;
      app.dataset.socket = "open";
      showConnection("online");
      send({ type: "resume", after: lastEvent });
      // Sends that never got an answer go again: the client_id makes them idempotent.
      pending.forEach(function (entry) { if (!entry.failed) send(entry.frame); });
    });
    socket.addEventListener("message", function (event) { handle(JSON.parse(event.data)); });
    socket.addEventListener("close", function (event) {
      socket = null;
      app.dataset.socket = "closed";
      if (event.code === 4401 || event.code === 4403) { location.href = app.dataset.loginUrl; return; }
      // Back off exponentially, with jitter, so a restarted server is not stampeded.
      var delay = Math.min(30000, 1000 * Math.pow(2, retries++)) * (0.5 + Math.random() / 2);
      showConnection(navigator.onLine === false ? "offline" : "reconnecting");
      connect.timer = setTimeout(connect, delay);
    });
  }

  function isOpen() { return socket !== null && socket.readyState === WebSocket.OPEN; }
  function send(frame) { return isOpen() && (socket.send(JSON.stringify(frame)), true); }

  function advanceMark(event) {
    if (!(event > lastEvent)) return;
    lastEvent = event;
    shownEvents.forEach(function (id) { if (id <= event) shownEvents.delete(id); });
  }

  var JOURNAL_FRAMES = { message: 1, message_edited: 1, message_deleted: 1, reaction: 1, membership: 1, conversation: 1 };

  function handle(frame) {
    if (JOURNAL_FRAMES[frame.type] && frame.event) {
      if (frame.event <= lastEvent || shownEvents.has(frame.event)) return; // shown already
      shownEvents.add(frame.event);
    }
    switch (frame.type) {
      case "synced":
      case "resumed": advanceMark(frame.event); break;
      case "message": onMessage(frame.conversation, frame.message); break;
      case "message_edited":
      case "message_deleted": onMessageChanged(frame.conversation, frame.message); break;
      case "ack": onAck(frame); break;
      case "error": onError(frame); break;
      case "reaction": onReaction(frame); break;
      case "membership": onMembership(frame); break;
      case "conversation": onConversation(frame); break;
      case "typing": onTyping(frame); break;
      case "read": onRead(frame); break;
      case "presence": setPresence(frame.user, frame.online); break;
      case "resync": location.reload(); break;
      case "account_disabled": location.href = app.dataset.loginUrl; break;
    }
  }

  // --- Events ---------------------------------------------------------------

  function isOpenConversation(id) { return chat !== null && chat.conversation === id; }

  function onMessage(conversationId, m) {
    names[m.author.id] = m.author.name;
    var fresh = bumpSidebar(conversationId, m);
    if (isOpenConversation(conversationId)) {
      typers.delete(m.author.id);
      renderTyping();
      var entry = m.client_id && pending.get(m.client_id);
      if (entry) { entry.row.remove(); pending.delete(m.client_id); }
      fresh = insertMessage(m) || fresh;
      if (m.author.id !== me) {
        if (chat.seenBy) moveSeen(m.author.id, m.seq); // writing implies having read
        markLatestRead();
      }
    }
    if (fresh) notify(conversationId, m);
  }

  function onMessageChanged(conversationId, m) {
    var row = isOpenConversation(conversationId) && document.getElementById("m" + m.id);
    if (!row) return;
    applyContent(row, m);
    if (m.deleted) {
      $$('[data-quote="' + m.id + '"] .msg__quote-text').forEach(function (el) { el.textContent = "This message was deleted."; });
      fixRun(nextRow(row));
    }
  }

  function onAck(frame) {
    var entry = pending.get(frame.client_id);
    if (!entry) return;
    // A duplicate's message is on the page already (or arrives with the resume).
    if (document.getElementById("m" + frame.message)) { entry.row.remove(); pending.delete(frame.client_id); }
  }

  function onError(frame) {
    var entry = frame.client_id && pending.get(frame.client_id);
    if (entry && frame.code === "unavailable" && (entry.tries = (entry.tries || 0) + 1) <= 5) {
      // The server could not store it just now (a restart): the same frame again, a little later.
      setTimeout(function () { if (pending.has(frame.client_id)) send(entry.frame); }, 1000 * entry.tries);
      return;
    }
    if (!entry) { toast(frame.detail); return; }
    entry.failed = true;
    entry.row.classList.add("msg--failed");
    $("[data-status-text]", entry.row).textContent = "Not sent: " + frame.detail;
    $("[data-retry]", entry.row).hidden = false;
  }

  function onReaction(frame) {
    names[frame.user.id] = frame.user.name;
    var row = isOpenConversation(frame.conversation) && document.getElementById("m" + frame.message);
    if (row) setReaction(row, frame.emoji, frame.user.id, frame.added);
  }
  function onMembership(frame) {
    var user = frame.user;
    var gone = frame.change === "left" || frame.change === "removed";
    var here = isOpenConversation(frame.conversation);
    if (user.id === me && gone && here) {
      toast("You are no longer a member of this conversation.");
      setTimeout(function () { location.href = "/"; }, 1500);
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
  }

  // Who takes part from outside the company must always be visible (the banner
  // is drawn by the server): reload, unless that would throw away a draft.
  function externalsChanged() {
    var input = $("[data-composer-input]");
    if (input && input.value.trim()) toast("External participants changed: reload the page to see who is here.");
    else location.reload();
  }

  function onConversation(frame) {
    if (frame.change === "created") { refreshSidebar(); return; }
    if (frame.change === "externals" && isOpenConversation(frame.conversation)) { externalsChanged(); return; }
    if (frame.change === "archived" && isOpenConversation(frame.conversation)) { location.reload(); return; }
    var item = sidebarItem(frame.conversation);
    if (frame.change === "renamed") {
      if (item && frame.name) $("[data-label]", item).textContent = frame.name;
      else refreshSidebar();
      if (isOpenConversation(frame.conversation) && frame.name) $("[data-conversation-title]").textContent = frame.name;
    }
    if (frame.change === "topic" && isOpenConversation(frame.conversation)) {
      var topic = $("[data-conversation-topic]");
      topic.textContent = frame.topic || "";
      topic.hidden = !frame.topic;
    }
  }

  function onTyping(frame) {
    if (!isOpenConversation(frame.conversation) || frame.user.id === me) return;
    typers.set(frame.user.id, { name: frame.user.name, until: Date.now() + TYPING_SHOWN_MS });
    renderTyping();
    setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
  }

  function renderTyping() {
    var box = $("[data-typing]");
    if (!box) return;
    var now = Date.now();
    var who = [];
    typers.forEach(function (t, id) { if (t.until > now) who.push(t.name); else typers.delete(id); });
    box.textContent = who.length === 0 ? "" : who.length === 1 ? who[0] + " is typing…"
      : who.length === 2 ? who[0] + " and " + who[1] + " are typing…" : "Several people are typing…";
  }

  function onRead(frame) {
    if (frame.user === me) {
      // Read in another tab of mine: the badges go.
      var item = sidebarItem(frame.conversation);
      if (item && frame.seq >= Number(item.dataset.seq)) setBadges(item, 0, 0);
      return;
    }
    if (isOpenConversation(frame.conversation) && chat.seenBy) moveSeen(frame.user, frame.seq);
  }

  function setPresence(userId, online) {
    $$('[data-presence="' + Number(userId) + '"]').forEach(function (dot) { dot.classList.toggle("is-online", !!online); });
  }

  // --- The sidebar ------------------------------------------------------------

  function sidebarItem(conversationId) { return $('.side-item[data-conversation="' + Number(conversationId) + '"]'); }

  // Moves the conversation to the top and counts the message once; returns
  // whether the message was new to this page (so it may notify).
  function bumpSidebar(conversationId, m) {
    var item = sidebarItem(conversationId);
    if (!item) { refreshSidebar(); return m.author.id !== me; }
    if (Number(item.dataset.seq) >= m.seq) return false; // counted already
    item.dataset.seq = String(m.seq);
    var li = item.parentElement;
    li.parentElement.insertBefore(li, li.parentElement.firstElementChild);
    if (m.author.id === me || (isOpenConversation(conversationId) && willBeRead())) return true;
    var unread = Number($("[data-unread] [data-n]", item).textContent) || 0;
    var mentions = Number($("[data-mentions] [data-n]", item).textContent) || 0;
    setBadges(item, unread + 1, mentions + (item.dataset.kind === "direct" || mentionsMe(m) ? 1 : 0));
    if (item.dataset.muted !== "true") item.classList.add("is-unread");
    return true;
  }

  function setBadges(item, unread, mentions) {
    var direct = item.dataset.kind === "direct";
    var muted = item.dataset.muted === "true";
    $("[data-unread] [data-n]", item).textContent = String(unread);
    $("[data-mentions] [data-n]", item).textContent = String(mentions);
    $("[data-unread]", item).hidden = !unread || direct || muted;
    $("[data-mentions]", item).hidden = !mentions;
    if (!unread) item.classList.remove("is-unread");
  }

  var sidebarTimer = null;
  function refreshSidebar() {
    // A conversation appeared or went: fetch the list again (htmx swaps it in).
    clearTimeout(sidebarTimer);
    sidebarTimer = setTimeout(function () {
      var url = app.dataset.sidebarUrl + (chat ? "?current=" + chat.conversation : "");
      if (window.htmx) window.htmx.ajax("GET", url, { target: "#sidebar-conversations", swap: "outerHTML" });
    }, 250);
  }

  // --- Notifications ----------------------------------------------------------

  function notify(conversationId, m) {
    if (!("Notification" in window) || Notification.permission !== "granted" || m.author.id === me) return;
    var item = sidebarItem(conversationId);
    var direct = item ? item.dataset.kind === "direct" : isOpenConversation(conversationId) && chat.kind === "direct";
    var muted = item && item.dataset.muted === "true";
    if (!(direct && !muted) && !mentionsMe(m)) return;
    if (isOpenConversation(conversationId) && !document.hidden) return;
    var where = item ? $("[data-label]", item).textContent : chat.title;
    var note = new Notification(direct ? m.author.name : m.author.name + " in " + where, {
      body: m.body.length > 180 ? m.body.slice(0, 179) + "…" : m.body,
      tag: "kontor-" + conversationId, // one notification per conversation, the latest
    });
    note.addEventListener("click", function () { window.focus(); location.href = "/c/" + conversationId + "/"; note.close(); });
  }

  function setUpNotifyButton() {
    var button = $("[data-notify-button]");
    if (!button || !("Notification" in window)) return;
    button.hidden = Notification.permission !== "default";
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function (answer) {
        button.hidden = true;
        toast(answer === "granted" ? "Desktop notifications are on for direct messages and mentions."
          : "Notifications stay off. You can change this in your browser's site settings.");
      });
    });
  }

  // --- The open conversation ------------------------------------------------

  function readChat() {
    var data = document.getElementById("chat-data");
    if (!data) return null;
    var c = JSON.parse(data.textContent);
    var members = {};
    c.members.forEach(function (p) { members[p.id] = p; });
    var rows = document.querySelectorAll(".msg[data-seq]");
    // The server marked the page read when it rendered the newest messages.
    var readSeq = c.latest && rows.length ? Number(rows[rows.length - 1].dataset.seq) : 0;
    return Object.assign(c, { members: members, readSeq: readSeq, log: $("[data-log]"), scroller: $("[data-scroller]") });
  }

  function atBottom() { return Math.abs(chat.scroller.scrollTop) < 80; } // column-reverse: 0 is the bottom
  function scrollToBottom() { chat.scroller.scrollTop = 0; $("[data-jump]").hidden = true; }

  // Change the log without moving what the reader looks at, unless at the bottom.
  function keepingPosition(change) {
    var stick = atBottom();
    var anchor = $(".msg", chat.log);
    var top = anchor && anchor.getBoundingClientRect().top;
    change();
    if (stick) chat.scroller.scrollTop = 0;
    else if (anchor) chat.scroller.scrollTop += anchor.getBoundingClientRect().top - top;
    return stick;
  }

  function insertMessage(m) {
    if (document.getElementById("m" + m.id)) return false; // seen already
    if (!chat.latest) return false; // an older slice is shown: this would leave a gap
    var row = buildRow(m);
    var stuck = keepingPosition(function () { placeBySeq(row, m.seq); });
    if (!stuck && m.author.id !== me) $("[data-jump]").hidden = false;
    return true;
  }

  // Rows are kept in sequence order; unconfirmed sends stay at the very end.
  function placeBySeq(row, seq) {
    var rows = $$(".msg[data-seq]", chat.log);
    var before = null;
    for (var i = rows.length - 1; i >= 0; i--) {
      if (Number(rows[i].dataset.seq) < seq) { before = rows[i]; break; }
    }
    var next = before ? nextRow(before) : $(".msg", chat.log);
    // A divider belongs to the row after it, so go in front of it.
    while (next && next.previousElementSibling && next.previousElementSibling.matches(".day-divider, .new-divider")) next = next.previousElementSibling;
    chat.log.insertBefore(row, next); // null: at the end
    addDayDivider(row);
    fixRun(row);
    fixRun(nextRow(row));
  }

  // The message row after (or before) another, skipping dividers.
  function nextRow(row, back) {
    var step = back ? "previousElementSibling" : "nextElementSibling";
    var el = row && row[step];
    while (el && !el.classList.contains("msg")) el = el[step];
    return el;
  }

  function addDayDivider(row) {
    var prev = nextRow(row, true);
    if (!row.dataset.day || (prev && prev.dataset.day === row.dataset.day)) return;
    if (row.previousElementSibling && row.previousElementSibling.matches(".day-divider")) return;
    var divider = $("#divider-template").content.firstElementChild.cloneNode(true);
    divider.dataset.day = row.dataset.day;
    divider.firstElementChild.textContent = row.dataset.day === isoDay.format(new Date()) ? "Today" : row.dataset.dayLabel || row.dataset.day;
    chat.log.insertBefore(divider, row);
  }

  // A row continues the run above it (no avatar or name) when the same person
  // wrote it within five minutes, with nothing in between (as the server does).
  function fixRun(row) {
    if (!row) return;
    var prev = row.previousElementSibling;
    var cont = !!prev && prev.classList.contains("msg") && prev.dataset.author === row.dataset.author &&
      !prev.classList.contains("msg--deleted") && !row.dataset.reply &&
      new Date(row.dataset.time) - new Date(prev.dataset.time) < RUN_GAP_MS;
    row.classList.toggle("msg--cont", cont);
  }

  function buildRow(m) {
    var row = $("#message-template").content.firstElementChild.cloneNode(true);
    var created = new Date(m.created_at);
    var author = chat.members[m.author.id] || {};
    row.id = m.id ? "m" + m.id : "";
    if (m.id) { row.dataset.id = m.id; row.dataset.seq = m.seq; }
    row.dataset.author = m.author.id;
    row.dataset.time = created.toISOString();
    row.dataset.day = isoDay.format(created);
    row.dataset.dayLabel = dayName.format(created);
    if (m.reply_to) row.dataset.reply = m.reply_to;
    var avatar = $(".avatar", row);
    if (author.avatar) {
      var img = document.createElement("img");
      img.className = avatar.className; img.src = author.avatar; img.alt = "";
      avatar.replaceWith(img);
    } else {
      avatar.textContent = m.author.initials;
      avatar.dataset.hue = String(m.author.id).slice(-1);
    }
    $(".msg__author", row).textContent = m.author.name;
    $$("time", row).forEach(function (t) { t.dateTime = row.dataset.time; t.textContent = clock.format(created); });
    labelTimes(row);
    if (m.reply_to) fillQuote($(".msg__quote", row), m.reply_to);
    if (m.author.id === me) row.classList.add("msg--mine");
    else $$("[data-own]", row).forEach(function (el) { el.remove(); });
    // The no-JS forms and links of the skeleton point at message 0.
    $$("[href], [action]", row).forEach(function (el) {
      var attr = el.hasAttribute("action") ? "action" : "href";
      el.setAttribute(attr, el.getAttribute(attr).replace("/m/0/", "/m/" + m.id + "/").replace("reply_to=0", "reply_to=" + m.id));
    });
    applyContent(row, m);
    return row;
  }

  function fillQuote(quote, id) {
    var original = document.getElementById("m" + id);
    quote.hidden = false;
    quote.href = "#m" + id;
    quote.dataset.quote = id;
    $(".msg__quote-author", quote).textContent = original ? $(".msg__author", original).textContent : "Reply";
    $(".msg__quote-text", quote).textContent = !original ? "to an earlier message"
      : $("[data-body]", original) ? bodyText(original).slice(0, 140) : "This message was deleted.";
  }

  // Body, "edited", tombstone and mention highlight of a row, from a message payload.
  function applyContent(row, m) {
    var body = $("[data-body]", row);
    row.classList.toggle("msg--deleted", !!m.deleted);
    row.classList.toggle("msg--edited", !!m.edited && !m.deleted);
    row.classList.toggle("msg--mention", mentionsMe(m));
    renderFiles(row, m.deleted ? [] : m.files || []);
    if (m.deleted) {
      var tomb = document.createElement("p");
      tomb.className = "msg__tombstone";
      tomb.textContent = "This message was deleted.";
      if (body) body.replaceWith(tomb);
      $$(".msg__actions, .msg__quote[hidden]", row).forEach(function (el) { el.remove(); });
      return;
    }
    if (!body) return;
    body.innerHTML = m.html; // sanitised by the server (messenger/rendering.py)
    if (m.edited) {
      var edited = document.createElement("span");
      edited.className = "msg__edited";
      edited.textContent = "(edited)";
      body.appendChild(edited);
    }
    if (m.author.id === me) row.dataset.source = m.body;
    markMyMentions(row);
  }

  // Attachments: pictures inline, other files as download cards (text via textContent).
  function renderFiles(row, files) {
    var box = $("[data-files]", row);
    if (!box) return;
    box.textContent = "";
    box.hidden = files.length === 0;
    files.forEach(function (f) {
      var link = document.createElement("a");
      link.href = f.url;
      if (f.image) {
        link.className = "file-image";
        link.title = f.name;
        var img = document.createElement("img");
        img.src = f.url + "?inline=1";
        img.alt = f.name;
        img.loading = "lazy";
        if (f.width) { img.width = f.width; img.height = f.height; }
        link.appendChild(img);
      } else {
        link.className = "file-card";
        link.setAttribute("download", "");
        var icon = fileIcon(f.name);
        var text = document.createElement("span");
        text.className = "file-card__text";
        var name = document.createElement("span");
        name.className = "file-card__name";
        name.textContent = f.name;
        var meta = document.createElement("span");
        meta.className = "file-card__meta";
        meta.textContent = formatSize(f.size);
        text.append(name, meta);
        link.append(icon, text);
      }
      box.appendChild(link);
    });
  }

  // A send's files before the server confirms it: names and sizes, not yet links
  // (the download view lets nobody fetch a file before it is shared).
  function renderPendingFiles(row, files) {
    var box = $("[data-files]", row);
    box.hidden = files.length === 0;
    files.forEach(function (f) {
      var card = document.createElement("span");
      card.className = "file-card file-card--pending";
      card.append(fileIcon(f.name));
      var text = document.createElement("span");
      text.className = "file-card__text";
      var name = document.createElement("span");
      name.className = "file-card__name";
      name.textContent = f.name;
      var meta = document.createElement("span");
      meta.className = "file-card__meta";
      meta.textContent = formatSize(f.size);
      text.append(name, meta);
      card.append(text);
      box.appendChild(card);
    });
  }

  function fileIcon(name) {
    var icon = document.createElement("span");
    var ext = name.indexOf(".") > 0 ? name.split(".").pop().toLowerCase() : "";
    icon.className = "file-card__icon file-card__icon--" + (fileKind(ext) || "other");
    icon.setAttribute("aria-hidden", "true");
    icon.textContent = (ext || "file").slice(0, 4).toUpperCase();
    return icon;
  }

  function fileKind(ext) {
    if (ext === "pdf") return "pdf";
    if (/^(docx?|odt|rtf|txt|md)$/.test(ext)) return "doc";
    if (/^(xlsx?|ods|csv)$/.test(ext)) return "sheet";
    if (/^(pptx?|odp)$/.test(ext)) return "slides";
    if (/^(png|jpe?g|gif|webp)$/.test(ext)) return "image";
    return "";
  }

  function formatSize(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function bodyText(row) {
    var body = $("[data-body]", row).cloneNode(true);
    $$(".msg__edited", body).forEach(function (el) { el.remove(); });
    return body.textContent.trim();
  }
  function markMyMentions(root) {
    $$('.mention[data-user-id="' + me + '"]', root).forEach(function (el) { el.classList.add("is-me"); });
  }

  // --- Reactions and "seen by" ------------------------------------------------

  function pillFor(row, emoji) {
    return $$(".reaction", row).filter(function (b) { return b.dataset.emoji === emoji; })[0] || null;
  }
  function usersOf(button) {
    return button ? button.dataset.users.split(" ").filter(Boolean).map(Number) : [];
  }
  function setReaction(row, emoji, userId, added) {
    var button = pillFor(row, emoji);
    var users = usersOf(button);
    if ((users.indexOf(userId) >= 0) === added) return; // already so (a replayed event)
    users = added ? users.concat([userId]) : users.filter(function (id) { return id !== userId; });
    if (!users.length) { button.closest("form").remove(); return; }
    if (!button) {
      var form = $("#reaction-template").content.firstElementChild.cloneNode(true);
      form.setAttribute("action", form.getAttribute("action").replace("/m/0/", "/m/" + row.dataset.id + "/"));
      $("input[name=emoji]", form).value = emoji;
      button = $(".reaction", form);
      button.dataset.emoji = emoji;
      $(".reaction__emoji", form).textContent = emoji;
      $("[data-reactions]", row).appendChild(form);
    }
    var mine = users.indexOf(me) >= 0;
    button.dataset.users = users.join(" ");
    button.classList.toggle("is-mine", mine);
    button.setAttribute("aria-pressed", String(mine));
    button.title = users.map(function (id) { return id === me ? "You" : personName(id); }).join(", ");
    $(".reaction__count", button).textContent = String(users.length);
    // Without the socket, the pill's form posts: it removes one's own reaction.
    var remove = $("input[name=remove]", button.form);
    if (remove) remove.disabled = !mine;
  }

  function personName(id) {
    return (chat.members[id] && chat.members[id].name) || names[id] || "Someone";
  }
  function moveSeen(userId, seq) {
    var target = null;
    $$(".msg[data-seq]", chat.log).forEach(function (row) { if (Number(row.dataset.seq) <= seq) target = row; });
    $$("[data-seen]", chat.log).forEach(function (seen) {
      var users = usersOf(seen);
      var here = seen.closest(".msg") === target && target.dataset.author !== String(userId);
      if (here === (users.indexOf(userId) >= 0)) return;
      users = here ? users.concat([userId]) : users.filter(function (id) { return id !== userId; });
      seen.dataset.users = users.join(" ");
      seen.textContent = users.length ? "Seen by " + users.map(personName).join(", ") : "";
      seen.hidden = !users.length;
    });
  }

  // --- Reading ----------------------------------------------------------------

  // Tell the server (and, through it, "seen by") once the newest message is on
  // screen; at most once per message, since scrolling fires often and frames are rate limited.
  function markLatestRead() {
    var rows = $$(".msg[data-seq]", chat.log);
    var last = rows[rows.length - 1];
    if (!last || !willBeRead() || Number(last.dataset.seq) <= chat.readSeq) return;
    chat.readSeq = Number(last.dataset.seq);
    send({ type: "read", conversation: chat.conversation, message: Number(last.dataset.id) });
    clearOwnBadges(chat.readSeq);
  }

  // Whether a message arriving now is read at once (and so never counted unread).
  function willBeRead() { return chat.latest && !document.hidden && atBottom(); }

  function clearOwnBadges(seq) {
    var item = sidebarItem(chat.conversation);
    if (item && (seq === null || seq >= Number(item.dataset.seq))) setBadges(item, 0, 0);
  }

  function hasUnreadBadge(item) {
    return !!item && (item.classList.contains("is-unread") || !$("[data-unread]", item).hidden || !$("[data-mentions]", item).hidden);
  }

  // Esc: the whole conversation is read, wherever one has scrolled to.
  function markAllRead() {
    var item = sidebarItem(chat.conversation);
    var rows = $$(".msg[data-seq]", chat.log);
    var last = rows[rows.length - 1];
    var behind = hasUnreadBadge(item) || (!!last && Number(last.dataset.seq) > chat.readSeq);
    if (!behind) return;
    if (!isOpen()) { location.href = "/c/" + chat.conversation + "/"; return; } // the page marks it read
    var frame = { type: "read", conversation: chat.conversation };
    // The newest message shown, or, on an older slice, everything there is.
    if (chat.latest && last) frame.message = Number(last.dataset.id);
    if (last) chat.readSeq = Math.max(chat.readSeq, Number(last.dataset.seq));
    send(frame);
    clearOwnBadges(chat.latest ? chat.readSeq : null);
    toast("Marked as read.");
  }

  // The conversation's own keys (the help dialog lists them): Esc marks it read,
  // Up in the empty composer edits one's last message.
  function setUpShortcuts() {
    // Capture: decide before other handlers close a menu or picker on the same Esc.
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape" || event.defaultPrevented || event.isComposing) return;
      if (event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return;
      if ($("dialog[open]") || $(".editor", chat.log) || $("details.picker[open], details.user-menu[open]")) return;
      if (app.classList.contains("app--nav-open")) return;
      var target = event.target;
      var composer = $("[data-composer-input]");
      if (target && target.closest && target.closest("input, textarea, select, [contenteditable]") && target !== composer) return;
      var preview = $("[data-reply-preview]");
      if (target === composer && preview && !preview.hidden && chat.setReply) { chat.setReply(null); return; } // Esc drops the reply first
      markAllRead();
    }, true);

    var input = $("[data-composer-input]");
    if (!input) return;
    input.addEventListener("keydown", function (event) {
      if (event.key !== "ArrowUp" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
      if (input.value !== "") return;
      var mine = $$(".msg.msg--mine[data-source][data-id]", chat.log);
      var row = mine[mine.length - 1];
      if (!row) return;
      event.preventDefault();
      var link = $('[data-action="edit"]', row);
      if (!isOpen()) { if (link) location.href = link.href; return; } // the edit page works without the socket
      openEditor(row, input);
      var editor = $(".editor", row);
      if (editor) editor.scrollIntoView({ block: "nearest" });
    });
  }

  // --- The composer, and actions on messages ------------------------------------

  function setUpComposer() {
    var form = $("[data-composer]");
    if (!form) return;
    var input = $("[data-composer-input]", form);
    var replyInput = $("input[name=reply_to]", form);

    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.altKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    input.addEventListener("input", function () {
      // The server relays one per 2 s; a keystroke while the socket is still connecting
      // does not count, so the next one tells the others.
      if (input.value.trim() && Date.now() - lastTypingSent > 3000 &&
          send({ type: "typing", conversation: chat.conversation })) {
        lastTypingSent = Date.now();
      }
    });
    var attachments = setUpAttachments(form, input);
    form.addEventListener("submit", function (event) {
      var attach = $("[data-attach]", form);
      if (attach && attach.files && attach.files.length) return; // files go with the plain form post
      if (attachments.busy()) { event.preventDefault(); attachments.explain(); return; }
      var files = attachments.ready();
      var body = input.value.trim();
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
      var clientId = uuid(); // a fresh one per send
      var frame = { type: "send", conversation: chat.conversation, body: body, client_id: clientId };
      if (replyInput.value) frame.reply_to = Number(replyInput.value);
      if (files.length) frame.files = files.map(function (f) { return f.id; });
      pending.set(clientId, { frame: frame, row: addPendingRow(frame, files) });
      if (!send(frame)) $("[data-status-text]", pending.get(clientId).row).textContent = "Waiting for the connection…";
      attachments.clear();
      input.value = "";
      lastTypingSent = 0;
      setReply(null);
      scrollToBottom();
    });

    // Replying: the preview above the composer and the hidden reply_to field.
    function setReply(row) {
      var preview = $("[data-reply-preview]", form);
      replyInput.value = row ? row.dataset.id : "";
      preview.hidden = !row;
      if (!row) return;
      $("[data-reply-author]", preview).textContent = $(".msg__author", row).textContent;
      $("[data-reply-text]", preview).textContent = bodyText(row).slice(0, 120);
      input.focus();
    }
    chat.setReply = setReply;
    $("[data-reply-cancel]", form).addEventListener("click", function (event) { event.preventDefault(); setReply(null); });
  }

  // --- Attachments: each file uploads at once; the send names the uploaded ones ---
  //
  // Files come from the paperclip button (the plain file input, which the no-JS
  // form posts), from a drop anywhere on the conversation, or from a paste into
  // the composer. Each uploads to /files/upload/ straight away with a chip that
  // shows its progress; the send frame then carries the ids, in order.

  var MAX_FILES = 10; // as messenger.services.messages.MAX_FILES

  function setUpAttachments(form, input) {
    var tray = $("[data-uploads]", form);
    var picker = $("[data-attach]", form);
    var button = $("[data-attach-button]", form);
    var status = $("[data-upload-status]", form);
    var sendButton = $(".composer__send", form);
    var zone = $("[data-drop-zone]");
    var uploads = []; // {file, chip, xhr, state: "uploading" | "done" | "failed", stored, preview}
    if (!tray || !picker || !button || !(window.FormData && window.XMLHttpRequest)) {
      return { busy: function () { return false; }, ready: function () { return []; }, clear: function () {}, explain: function () {} };
    }

    // The nicer button stands in for the plain input (which stays in the form).
    $("[data-attach-plain]", form).hidden = true;
    button.hidden = false;
    button.addEventListener("click", function () { picker.click(); });
    picker.addEventListener("change", function () {
      add(picker.files);
      picker.value = ""; // taken over: the form must not post them again
    });

    input.addEventListener("paste", function (event) {
      var files = event.clipboardData && event.clipboardData.files;
      if (!files || !files.length) return; // plain text pastes as usual
      event.preventDefault();
      add(Array.prototype.map.call(files, pastedName));
    });

    // Dragging files over the conversation shows where they go.
    var depth = 0;
    function carriesFiles(event) {
      return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types || [], "Files") >= 0;
    }
    function showZone(on) {
      if (zone) zone.hidden = !on;
      chat.log.closest("[data-chat]").classList.toggle("is-dragging", on);
    }
    var area = $("[data-chat]");
    area.addEventListener("dragenter", function (event) {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth++;
      showZone(true);
    });
    area.addEventListener("dragover", function (event) {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    area.addEventListener("dragleave", function (event) {
      if (!carriesFiles(event)) return;
      depth = Math.max(0, depth - 1);
      if (!depth) showZone(false);
    });
    area.addEventListener("drop", function (event) {
      if (!carriesFiles(event)) return;
      event.preventDefault();
      depth = 0;
      showZone(false);
      add(event.dataTransfer.files);
      input.focus();
    });
    // A file dropped just beside the conversation must not open in the tab.
    document.addEventListener("dragover", function (event) { if (carriesFiles(event)) event.preventDefault(); });
    document.addEventListener("drop", function (event) { if (carriesFiles(event)) event.preventDefault(); });
    window.addEventListener("blur", function () { depth = 0; showZone(false); });

    function pastedName(file) {
      // Screenshots arrive as "image.png": give them a name worth keeping.
      if (!/^image\.\w+$/.test(file.name || "image.png")) return file;
      var ext = (file.type.split("/")[1] || "png").replace("jpeg", "jpg");
      var stamp = isoDay.format(new Date()) + " " + clock.format(new Date()).replace(":", ".");
      try { return new File([file], "Pasted image " + stamp + "." + ext, { type: file.type }); }
      catch (e) { return file; }
    }

    function add(files) {
      Array.prototype.forEach.call(files || [], function (file) {
        if (uploads.length >= MAX_FILES) {
          announce("A message can carry at most " + MAX_FILES + " files; " + file.name + " was left out.");
          return;
        }
        start(file);
      });
      update();
    }

    function start(file) {
      var chip = $("#upload-template").content.firstElementChild.cloneNode(true);
      var entry = { file: file, chip: chip, xhr: null, state: "uploading", stored: null, preview: null };
      uploads.push(entry);
      $(".upload__name", chip).textContent = file.name;
      $(".upload__name", chip).title = file.name;
      $(".upload__size", chip).textContent = formatSize(file.size);
      var thumb = $(".upload__thumb", chip);
      if (/^image\/(png|jpeg|gif|webp)$/.test(file.type) && window.URL && URL.createObjectURL) {
        entry.preview = URL.createObjectURL(file);
        var img = document.createElement("img");
        img.src = entry.preview;
        img.alt = "";
        thumb.appendChild(img);
      } else {
        thumb.appendChild(fileIcon(file.name));
      }
      $("[data-upload-remove]", chip).addEventListener("click", function () { remove(entry); });
      tray.appendChild(chip);
      tray.hidden = false;

      var data = new FormData();
      data.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      entry.xhr = xhr;
      xhr.open("POST", form.dataset.uploadUrl);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) setProgress(entry, event.loaded / event.total);
      });
      xhr.addEventListener("load", function () {
        var answer = xhr.response || {};
        if (xhr.status === 201 && answer.id) {
          entry.stored = answer;
          setState(entry, "done", "");
          announce(file.name + " is ready to send.");
        } else {
          var why = answer.detail || (xhr.status === 413 ? "The file is too large." : "The server refused the file (HTTP " + xhr.status + ").");
          setState(entry, "failed", why);
          announce(file.name + " was not uploaded: " + why);
        }
      });
      xhr.addEventListener("error", function () {
        setState(entry, "failed", "The connection broke off. Remove the file and try again.");
        announce(file.name + " was not uploaded: the connection broke off.");
      });
      setState(entry, "uploading", "");
      xhr.send(data);
    }

    function setProgress(entry, fraction) {
      var percent = Math.min(100, Math.round(fraction * 100));
      $(".upload__progress", entry.chip).value = percent;
      $(".upload__state", entry.chip).textContent = percent === 0 ? "Starting…" : percent < 100 ? percent + "%" : "Checking…";
    }

    function setState(entry, state, detail) {
      var chip = entry.chip;
      entry.state = state;
      entry.xhr = state === "uploading" ? entry.xhr : null;
      chip.className = "upload upload--" + state;
      chip.dataset.state = state;
      $(".upload__progress", chip).hidden = state !== "uploading";
      if (state === "done") $(".upload__state", chip).textContent = "";
      if (state === "uploading") {
        $(".upload__progress", chip).setAttribute("aria-label", "Uploading " + entry.file.name);
        $(".upload__state", chip).textContent = "Starting…";
      }
      var error = $(".upload__error", chip);
      if (state === "failed") {
        if (!error) {
          error = document.createElement("span");
          error.className = "upload__error";
          $(".upload__text", chip).appendChild(error);
        }
        error.textContent = detail;
        $(".upload__state", chip).textContent = "";
      } else if (error) {
        error.remove();
      }
      $("[data-upload-remove-label]", chip).textContent = (state === "uploading" ? "Cancel the upload of " : "Remove ") + entry.file.name;
      $("[data-upload-remove]", chip).title = state === "uploading" ? "Cancel the upload" : "Remove";
      update();
    }

    function remove(entry) {
      if (entry.xhr) entry.xhr.abort(); // nothing is stored for an aborted upload
      // An uploaded file merely stays out of the message (nothing shares it).
      entry.chip.remove();
      if (entry.preview) URL.revokeObjectURL(entry.preview);
      uploads = uploads.filter(function (e) { return e !== entry; });
      announce(entry.state === "uploading" ? "Upload of " + entry.file.name + " cancelled." : entry.file.name + " removed.");
      update();
      input.focus();
    }

    function update() {
      tray.hidden = uploads.length === 0;
      var waiting = uploads.some(function (e) { return e.state === "uploading"; });
      var failed = uploads.some(function (e) { return e.state === "failed"; });
      sendButton.disabled = waiting || failed;
      sendButton.title = waiting ? "Wait until the files are uploaded" : failed ? "Remove the files that could not be uploaded" : "Send";
      form.classList.toggle("composer--files", uploads.length > 0);
    }

    function announce(text) {
      // Re-set so that a repeated message is read out again.
      status.textContent = "";
      setTimeout(function () { status.textContent = text; }, 30);
    }

    return {
      busy: function () { return uploads.some(function (e) { return e.state !== "done"; }); },
      ready: function () { return uploads.map(function (e) { return e.stored; }); },
      clear: function () {
        uploads.forEach(function (e) { e.chip.remove(); if (e.preview) URL.revokeObjectURL(e.preview); });
        uploads = [];
        update();
      },
      explain: function () {
        announce(uploads.some(function (e) { return e.state === "uploading"; })
          ? "Wait until the files are uploaded, then send." : "Remove the files that could not be uploaded, then send.");
      },
    };
  }

  function csrfToken() {
    var field = $("input[name=csrfmiddlewaretoken]");
    if (field && field.value) return field.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function addPendingRow(frame, files) {
    var row = buildRow({
      id: null, seq: null, author: { id: me, name: personName(me), initials: (chat.members[me] || {}).initials || "" },
      created_at: new Date().toISOString(), reply_to: frame.reply_to || null, html: "", body: frame.body,
    });
    row.classList.add("msg--pending");
    row.dataset.clientId = frame.client_id;
    $("[data-body]", row).textContent = frame.body; // shown as typed until the server's rendering arrives
    renderPendingFiles(row, files || []);
    $(".msg__actions", row).remove();
    $("[data-status]", row).hidden = false;
    $("[data-status-text]", row).textContent = "Sending…";
    $("[data-retry]", row).addEventListener("click", function () {
      // The same client_id again: if the first try did arrive, this changes nothing.
      pending.get(frame.client_id).failed = false;
      if (!send(frame)) toast("Still offline. It goes out when the connection is back.");
      row.classList.remove("msg--failed");
      $("[data-status-text]", row).textContent = "Sending…";
      $("[data-retry]", row).hidden = true;
    });
    keepingPosition(function () { chat.log.appendChild(row); addDayDivider(row); fixRun(row); });
    return row;
  }

  function openEditor(row, returnTo) {
    if ($(".editor", row) || !row.dataset.source) return;
    var editor = $("#editor-template").content.firstElementChild.cloneNode(true);
    var body = $("[data-body]", row);
    var textarea = $("textarea", editor);
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
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); close(); }
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); editor.requestSubmit(); }
    });
    editor.addEventListener("submit", function (event) {
      if (!isOpen()) return; // posts to /m/<id>/edit/
      event.preventDefault();
      var text = textarea.value.trim();
      if (text && text !== row.dataset.source) send({ type: "edit", message: Number(row.dataset.id), body: text });
      close();
    });
  }

  function setUpMessageActions() {
    chat.log.addEventListener("click", function (event) {
      var action = event.target.closest("[data-action]");
      var row = event.target.closest(".msg");
      if (!action) {
        // On touch screens, a tap on a message shows its actions.
        if (row && !event.target.closest("a, button, summary, textarea, form")) {
          $$(".msg.is-active", chat.log).forEach(function (r) { if (r !== row) r.classList.remove("is-active"); });
          row.classList.toggle("is-active");
        }
        return;
      }
      if (!row || !row.dataset.id) return;
      var kind = action.dataset.action;
      if (kind === "reply" && chat.setReply) { event.preventDefault(); chat.setReply(row); return; }
      if (!isOpen()) return; // the link leads to the page that does it without script
      event.preventDefault();
      if (kind === "edit") openEditor(row);
      if (kind === "delete" && window.confirm("Delete this message? Everyone will see that it was deleted.")) {
        send({ type: "delete", message: Number(row.dataset.id) });
      }
    });

    chat.log.addEventListener("submit", function (event) {
      var form = event.target;
      var row = form.closest(".msg");
      if (!row || !form.matches(".picker__panel, .reaction-form") || !isOpen()) return;
      event.preventDefault();
      var emoji = event.submitter && event.submitter.name === "emoji" ? event.submitter.value : $("input[name=emoji]", form).value;
      var mine = usersOf(pillFor(row, emoji)).indexOf(me) >= 0;
      send({ type: "react", message: Number(row.dataset.id), emoji: emoji, remove: mine });
      var picker = form.closest("details");
      if (picker) picker.open = false;
    });

    // Older messages arrive through htmx: join them up with what was there.
    chat.log.addEventListener("htmx:afterSwap", function () {
      $$(".msg", chat.log).forEach(function (row) {
        var first = row.previousElementSibling;
        var prev = nextRow(row, true);
        if (first && first.matches(".day-divider") && prev && prev.dataset.day === row.dataset.day) first.remove();
      });
      markMyMentions(chat.log);
      labelTimes(chat.log);
    });

    chat.scroller.addEventListener("scroll", function () {
      if (atBottom()) { $("[data-jump]").hidden = true; markLatestRead(); }
    }, { passive: true });
    $("[data-jump]").addEventListener("click", scrollToBottom);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) markLatestRead(); });

    markMyMentions(chat.log);
  }

  // --- Pages with people pickers: filter the list as one types ------------------

  function setUpFilters() {
    $$("[data-filter-list]").forEach(function (list) {
      var input = $("[data-filter-input]", list);
      var items = $$("[data-filter-item]", list);
      input.hidden = false;
      input.addEventListener("input", function () {
        var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
        items.forEach(function (item) {
          var text = item.dataset.filterText.toLowerCase();
          item.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
        });
        $("[data-filter-none]", list).hidden = items.some(function (item) { return !item.hidden; });
      });
    });
  }

  // Close an open reaction picker when clicking elsewhere or pressing Escape.
  document.addEventListener("click", function (event) {
    $$("details.picker[open]").forEach(function (d) { if (!d.contains(event.target)) d.open = false; });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") $$("details.picker[open]").forEach(function (d) { d.open = false; });
  });

  setUpFilters();
  if (chat) {
    setUpComposer();
    setUpMessageActions();
    setUpNotifyButton();
    setUpShortcuts();
    labelTimes(chat.log);
    setInterval(function () { labelTimes(chat.log); }, 60000);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) labelTimes(chat.log); });
  }
  connect();
})();
