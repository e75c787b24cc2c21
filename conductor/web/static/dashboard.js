// The dashboard's behaviour: confirmation before actions, and live updates from the
// server-sent events at /api/stream (no inline script: the CSP forbids it).
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
(() => {
  const url = document.body.getAttribute("data-stream");
  if (!url || !window.EventSource || !document.querySelector("[data-live]")) return;
  let seen = null;
  let reloading = false;
  const source = new EventSource(url);
  source.addEventListener("changed", (message) => {
    const data = JSON.parse(message.data);
    if (seen !== null && data.seq !== seen && !reloading && !document.querySelector("form :focus")) {
      reloading = true;
      fetch(window.location.href, { credentials: "same-origin" })
        .then((response) => response.text())
        .then((html) => {
          const fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live]").forEach((old) => {
            const name = old.getAttribute("data-live");
            const replacement = fresh.querySelector(`[data-live="${name}"]`);
            if (replacement) old.replaceWith(replacement);
          });
        })
        .finally(() => { reloading = false; });
    }
    seen = data.seq;
  });
})();
