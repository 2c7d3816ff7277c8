// Kontor's page behaviour that needs script. Every page works without it.
(function () {
  "use strict";

  function setNav(app, open) {
    app.classList.toggle("app--nav-open", open);
    var toggle = app.querySelector("[data-nav-toggle]");
    var backdrop = app.querySelector("[data-nav-close]");
    if (toggle) toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (backdrop) backdrop.hidden = !open;
  }

  document.addEventListener("click", function (event) {
    var app = document.querySelector("[data-app]");
    if (!app) return;
    if (event.target.closest("[data-nav-toggle]")) {
      setNav(app, !app.classList.contains("app--nav-open"));
    } else if (event.target.closest("[data-nav-close]")) {
      setNav(app, false);
    }
    // Close an open user menu when clicking elsewhere.
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var app = document.querySelector("[data-app]");
    if (app) setNav(app, false);
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });

  // --- Keyboard shortcuts: the help dialog (?) and the quick switcher (Ctrl-K) ---
  //
  // Both are native <dialog>s drawn by layouts/app.html: Esc closes them, and
  // focus goes back to where it was. chat.js adds the conversation's own keys.

  var help = document.querySelector("[data-shortcuts-dialog]");
  var switcher = document.querySelector("[data-switcher]");
  if (!help || !switcher || typeof help.showModal !== "function") return;

  var isMac = /Mac|iPhone|iPad/.test((navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || "");
  document.querySelectorAll("[data-mod-key]").forEach(function (key) {
    key.textContent = isMac ? "⌘" : "Ctrl";
    key.title = isMac ? "Command" : "Control";
  });

  var returnFocus = new WeakMap(); // dialog -> the element focused before it opened
  function openDialog(dialog) {
    if (dialog.open) return;
    document.querySelectorAll("dialog[open]").forEach(function (other) { other.close(); });
    var active = document.activeElement;
    returnFocus.set(dialog, active && active !== document.body ? active : null);
    dialog.showModal();
  }
  [help, switcher].forEach(function (dialog) {
    dialog.addEventListener("close", function () {
      var back = returnFocus.get(dialog);
      returnFocus.delete(dialog);
      if (back && document.contains(back) && !document.querySelector("dialog[open]")) back.focus();
    });
    // A click on the backdrop (the dialog box itself, outside its panel) closes it.
    dialog.addEventListener("click", function (event) { if (event.target === dialog) dialog.close(); });
  });
  help.querySelectorAll("[data-dialog-close]").forEach(function (button) {
    button.addEventListener("click", function () { help.close(); });
  });
  document.querySelectorAll("[data-shortcuts-open]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { openDialog(help); });
  });

  function typingInField(target) {
    return !!target && !!target.closest && !!target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false])");
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) return;
    var key = event.key || "";
    if ((event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && key.toLowerCase() === "k") {
      event.preventDefault();
      if (switcher.open) { input.focus(); input.select(); } else openSwitcher();
      return;
    }
    if (key === "?" && !event.ctrlKey && !event.metaKey && !event.altKey && !typingInField(event.target)) {
      event.preventDefault();
      if (help.open) help.close(); else openDialog(help);
    }
  });

  // The quick switcher filters the conversations of the sidebar (as on the page).
  var input = switcher.querySelector("[data-switcher-input]");
  var list = switcher.querySelector("[data-switcher-list]");
  var none = switcher.querySelector("[data-switcher-none]");
  var searchLink = switcher.querySelector("[data-switcher-search]");
  var options = []; // {li, href, text}
  var active = -1;
  var KINDS = { channel: "Channel", group: "Group", direct: "Direct message" };

  function fold(text) {
    // "Müller" is found as "muller": case and accents do not matter.
    return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function openSwitcher() {
    list.textContent = "";
    options = Array.prototype.map.call(document.querySelectorAll("[data-sidebar] a.side-item[href]"), function (item, i) {
      var label = item.querySelector("[data-label]");
      var name = (label ? label.textContent : item.textContent).trim();
      var li = document.createElement("li");
      li.className = "switcher__option";
      li.id = "switcher-option-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      var glyph = item.querySelector(".side-item__icon, .side-item__person");
      if (glyph) {
        glyph = glyph.cloneNode(true);
        glyph.classList.add("switcher__glyph");
        glyph.setAttribute("aria-hidden", "true");
        li.appendChild(glyph);
      }
      var text = document.createElement("span");
      text.className = "switcher__name";
      text.textContent = name;
      li.appendChild(text);
      var kind = document.createElement("span");
      kind.className = "switcher__kind";
      kind.textContent = (KINDS[item.dataset.kind] || "") + (item.classList.contains("is-current") ? " · open" : "");
      li.appendChild(kind);
      var unread = item.matches(".is-unread") || Array.prototype.some.call(
        item.querySelectorAll("[data-unread], [data-mentions]"), function (badge) { return !badge.hidden; });
      if (unread) {
        var dot = document.createElement("span");
        dot.className = "switcher__unread";
        dot.textContent = "unread";
        li.appendChild(dot);
      }
      li.addEventListener("mousedown", function (event) { event.preventDefault(); }); // keep the focus in the field
      li.addEventListener("click", function () { location.href = item.href; });
      list.appendChild(li);
      return { li: li, href: item.href, text: fold(name), current: item.classList.contains("is-current") };
    });
    input.value = "";
    filter();
    openDialog(switcher);
    input.focus();
  }

  // The options shown, in the order of the list.
  function visible() {
    return Array.prototype.filter.call(list.children, function (li) { return !li.hidden; }).map(function (li) {
      return options.filter(function (o) { return o.li === li; })[0];
    });
  }

  function filter() {
    var words = fold(input.value).split(/\s+/).filter(Boolean);
    options.forEach(function (o) {
      o.li.hidden = !words.every(function (w) { return o.text.indexOf(w) >= 0; });
    });
    // Names that start with what was typed come first; otherwise the sidebar's order.
    var first = words[0] || "";
    var shown = visible();
    shown.sort(function (a, b) {
      var pa = first && (a.text.indexOf(first) === 0 || a.text.indexOf(" " + first) >= 0) ? 0 : 1;
      var pb = first && (b.text.indexOf(first) === 0 || b.text.indexOf(" " + first) >= 0) ? 0 : 1;
      return pa - pb || options.indexOf(a) - options.indexOf(b);
    });
    shown.forEach(function (o) { list.appendChild(o.li); });
    none.hidden = shown.length > 0;
    list.hidden = shown.length === 0;
    if (searchLink) searchLink.href = searchLink.href.split("?")[0] + "?q=" + encodeURIComponent(input.value.trim());
    // Start on the first conversation that is not the open one.
    var start = shown.findIndex(function (o) { return !o.current; });
    setActive(shown.length ? Math.max(0, start) : -1);
  }

  function setActive(index) {
    var shown = visible();
    options.forEach(function (o) { o.li.setAttribute("aria-selected", "false"); o.li.classList.remove("is-active"); });
    active = index;
    if (index < 0 || !shown[index]) { input.removeAttribute("aria-activedescendant"); return; }
    var option = shown[index].li;
    option.setAttribute("aria-selected", "true");
    option.classList.add("is-active");
    input.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  function activeOption() {
    var li = list.querySelector(".switcher__option.is-active");
    return li ? options.filter(function (o) { return o.li === li; })[0] : null;
  }

  input.addEventListener("input", filter);
  input.addEventListener("keydown", function (event) {
    var count = visible().length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!count) return;
      var step = event.key === "ArrowDown" ? 1 : -1;
      setActive((active + step + count) % count);
    } else if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      var chosen = activeOption();
      if (chosen) location.href = chosen.href;
      else if (input.value.trim() && searchLink) location.href = searchLink.href;
    }
  });
})();

// The auditor workspace on a phone: its navigation is a strip that scrolls
// sideways; the page's own entry is brought into view instead of cut off.
(function () {
  "use strict";
  var links = document.querySelector(".ws-nav__links");
  var current = links && links.querySelector('[aria-current="page"]');
  if (!current) return;
  function reveal() {
    if (links.scrollWidth <= links.clientWidth) return;
    var offset = current.getBoundingClientRect().left - links.getBoundingClientRect().left;
    links.scrollLeft += offset - (links.clientWidth - current.offsetWidth) / 2;
  }
  reveal();
  // The strip appears when the window narrows (a phone turned, a window resized).
  window.matchMedia("(max-width: 900px)").addEventListener("change", reveal);
})();

// The archive search on a phone: once there are results, the filters fold into
// one line ("Filters  Rabatt Nordhafen  Change") so the results come first; on a
// wider window they are always open (their summary line is hidden there).
(function () {
  "use strict";
  var panels = document.querySelectorAll("details[data-collapse-narrow]");
  if (!panels.length) return;
  var narrow = window.matchMedia("(max-width: 640px)");
  function fit() {
    for (var i = 0; i < panels.length; i++) panels[i].open = !narrow.matches;
  }
  fit();
  narrow.addEventListener("change", fit);
})();
