/* conductor dashboard: the overview's charts, drawn with uPlot from the JSON API.
 *
 * Each <div class="chart" data-src="/api/activity" data-kind="throughput|latency"> is
 * filled from the API's per-minute points of the last hour (`series`, each from `start`),
 * and drawn again (at most every few seconds) when dashboard.js says the ledger changed.
 * Colours come from the stylesheet's variables, so the charts follow the light or dark
 * theme.
 */
(function () {
  "use strict";
  if (!window.uPlot) { return; }
  var REDRAW_MS = 3000;
  var styles = getComputedStyle(document.documentElement);
  function colour(name) { return styles.getPropertyValue(name).trim() || "#888"; }

  var KINDS = {
    throughput: {
      unit: "jobs / min",
      series: [
        { label: "completed", colour: "--completed", value: function (b) { return b.completed; } },
        { label: "failed", colour: "--failed", value: function (b) { return b.failed; } }
      ]
    },
    latency: {
      unit: "seconds",
      series: [
        { label: "wait p50", colour: "--pending", value: function (b) { return b.wait_seconds.p50; } },
        { label: "wait p95", colour: "--claimed", value: function (b) { return b.wait_seconds.p95; } },
        { label: "run p50", colour: "--in_progress", value: function (b) { return b.run_seconds.p50; } },
        { label: "run p95", colour: "--completed", value: function (b) { return b.run_seconds.p95; } }
      ]
    }
  };

  function columns(kind, buckets) {
    var xs = buckets.map(function (b) { return Date.parse(b.start) / 1000; });
    var data = [xs];
    kind.series.forEach(function (s) { data.push(buckets.map(s.value)); });
    return data;
  }

  function draw(el) {
    var kind = KINDS[el.getAttribute("data-kind")];
    if (!kind) { return; }
    fetch(el.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (body) {
        var data = columns(kind, body.series || []);
        if (el._plot) { el._plot.setData(data); return; }
        el.textContent = "";
        var opts = {
          width: Math.max(280, el.clientWidth),
          height: 200,
          legend: { show: true },
          scales: { x: { time: true } },
          axes: [
            { stroke: colour("--muted"), grid: { stroke: colour("--line") } },
            { stroke: colour("--muted"), grid: { stroke: colour("--line") }, label: kind.unit }
          ],
          series: [{}].concat(kind.series.map(function (s) {
            return { label: s.label, stroke: colour(s.colour), width: 2, spanGaps: false, points: { show: true, size: 5, fill: colour(s.colour) } };
          }))
        };
        el._plot = new window.uPlot(opts, data, el);
        el.setAttribute("data-drawn", "1");
      })
      .catch(function (err) { el.setAttribute("data-error", String(err)); });
  }

  var charts = Array.prototype.slice.call(document.querySelectorAll(".chart[data-src]"));
  charts.forEach(draw);
  var last = Date.now();
  var pending = null;
  document.body.addEventListener("conductor:changed", function () {
    if (pending !== null) { return; }
    var wait = Math.max(0, REDRAW_MS - (Date.now() - last));
    pending = window.setTimeout(function () {
      pending = null;
      last = Date.now();
      charts.forEach(draw);
    }, wait);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (el) {
      if (el._plot) { el._plot.setSize({ width: Math.max(280, el.clientWidth), height: 200 }); }
    });
  });
})();
