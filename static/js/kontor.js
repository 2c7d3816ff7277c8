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
})();
