/* conductor dashboard: live updates without inline script (the CSP forbids it).
 *
 * The page's <body data-stream="/url"> names the server's event stream (SSE). Every event
 * on it fires one debounced "conductor:changed" event on <body>; the page's live regions
 * listen for it with htmx (hx-trigger="conductor:changed from:body") and fetch themselves
 * again. The stream only says "something changed": the regions read the truth from the
 * server, so a dropped or merged event can never leave a page showing a wrong count.
 */
(function () {
  "use strict";
  var body = document.body;
  var url = body.getAttribute("data-stream");
  if (!url || !window.EventSource) { return; }
  var names = (body.getAttribute("data-stream-events") || "").split(",");
  var dot = document.querySelector(".live-dot");
  var timer = null;
  var DEBOUNCE_MS = 150;

  function changed() {
    if (timer !== null) { return; }
    timer = window.setTimeout(function () {
      timer = null;
      body.dispatchEvent(new CustomEvent("conductor:changed", { bubbles: true }));
    }, DEBOUNCE_MS);
  }

  function connect() {
    var source = new EventSource(url);
    source.onopen = function () {
      if (dot) { dot.classList.add("on"); dot.title = "live"; }
      body.setAttribute("data-live", "on");
    };
    source.onerror = function () {
      if (dot) { dot.classList.remove("on"); dot.title = "reconnecting"; }
      body.setAttribute("data-live", "off");
    };
    source.onmessage = changed;
    names.forEach(function (name) {
      name = name.trim();
      if (name) { source.addEventListener(name, changed); }
    });
  }
  connect();
})();
