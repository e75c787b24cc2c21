/* conductor dashboard: confirmation before actions, and live updates. A file, never
 * inline script: the Content-Security-Policy forbids inline script and handlers.
 *
 * Confirm: every action form carries data-confirm="question"; submitting it asks that
 * question first (the browser's own dialog) and declining submits nothing. A `{field}` in
 * the question is that field's value as typed (its placeholder when empty), so the
 * question says what will be sent.
 *
 * Live: <body data-stream="/api/stream"> names the server's event stream (SSE). Each
 * `changed` event on it fires one debounced "conductor:changed" event on <body>; the
 * page's live regions listen with htmx (hx-trigger="conductor:changed from:body") and
 * fetch themselves again. The stream only says "the ledger moved": every region reads the
 * truth from the server, so a dropped or merged event never leaves a wrong number shown.
 * A region holding a field being edited (focused, or changed from what the page showed)
 * is left alone until the edit ends: refreshing it would throw away what is typed.
 */
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const template = form.getAttribute && form.getAttribute("data-confirm");
  const question = template && template.replace(/\{(\w+)\}/g, (text, name) => {
    const field = form.elements.namedItem(name);
    return field ? field.value.trim() || field.placeholder : text;
  });
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
document.addEventListener("htmx:beforeRequest", (event) => {
  const fields = event.detail.elt.querySelectorAll("input:not([type=hidden])");
  const editing = Array.from(fields).some(
    (field) => field === document.activeElement || field.value !== field.defaultValue
  );
  if (editing) event.preventDefault();
});
(() => {
  const body = document.body;
  const url = body.getAttribute("data-stream");
  if (!url || !window.EventSource) return;
  const dot = document.querySelector(".live-dot");
  const DEBOUNCE_MS = 100;
  let timer = null;
  let seen = null;
  const changed = () => {
    if (timer !== null) return;
    timer = window.setTimeout(() => {
      timer = null;
      body.dispatchEvent(new CustomEvent("conductor:changed", { bubbles: true }));
    }, DEBOUNCE_MS);
  };
  const source = new EventSource(url);
  source.onopen = () => {
    body.setAttribute("data-stream-state", "open");
    if (dot) { dot.classList.add("on"); dot.title = "live"; }
  };
  source.onerror = () => {
    body.setAttribute("data-stream-state", "closed");
    if (dot) { dot.classList.remove("on"); dot.title = "reconnecting"; }
  };
  source.addEventListener("changed", (message) => {
    let seq = null;
    try { seq = JSON.parse(message.data).seq; } catch (e) { seq = null; }
    // The first message says where the log stands; the page was rendered about then, but
    // an event between the render and the subscription is caught by refreshing anyway.
    if (seq === null || seq !== seen) changed();
    seen = seq;
  });
})();
