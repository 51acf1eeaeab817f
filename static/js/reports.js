// Charts of the Reports page and the dashboard, drawn by the vendored uPlot (static/vendor/).
//
// The server puts each report's figures in a <script type="application/json"> (Django's
// json_script): `series` is the report's own series, unchanged, so the chart plots the very
// numbers the table beside it shows, and `charts` says which figures each chart draws. Nothing
// here is inline in the page, so a Content-Security-Policy can forbid inline script and style.
//
//   <div data-chart="outcomes" data-chart-source="report-data"></div>
//   report-data: {"tz": "Europe/London", "series": [{"bucket": "2026-03-29T00:00:00+00:00", ...}],
//                 "charts": {"outcomes": {"kind": "count", "lines": [{"field", "label", "color"}]}}}
//
// kind: "count" (whole numbers), "rate" (fractions 0–1, drawn as %), "seconds";
// a chart with "spark": true is a dashboard sparkline (no axes, no legend, no cursor).
(() => {
  "use strict";

  const HEIGHT = 220;
  const SPARK_HEIGHT = 44;

  const formatters = {
    count: (value) => (value == null ? "—" : Math.round(value).toLocaleString()),
    rate: (value) => (value == null ? "—" : `${(value * 100).toFixed(1)} %`),
    seconds: (value) => (value == null ? "—" : `${value.toFixed(1)} s`),
  };

  function sourceOf(element) {
    const script = document.getElementById(element.dataset.chartSource);
    if (!script) return null;
    if (!script._parsed) script._parsed = JSON.parse(script.textContent);
    return script._parsed;
  }

  function columns(source, spec) {
    // Rates stay fractions in the data (as in the table's dict); the axis and legend show %.
    const xs = source.series.map((point) => Date.parse(point.bucket) / 1000);
    const ys = spec.lines.map((line) =>
      source.series.map((point) => {
        const value = point[line.field];
        return value == null ? null : Number(value);
      }),
    );
    return [xs, ...ys];
  }

  function options(element, source, spec, width) {
    const show = formatters[spec.kind] || formatters.count;
    const many = source.series.length > 60;
    const tzDate = (seconds) => uPlot.tzDate(new Date(seconds * 1000), source.tz);
    const series = [
      { label: "Time", value: (u, seconds) => (seconds == null ? "—" : bucketLabel(seconds, source)) },
      ...spec.lines.map((line) => ({
        label: line.label,
        stroke: line.color,
        width: spec.spark ? 1.5 : 2,
        // A count's sparkline is filled beneath; a rate's stays a line (its gaps would leave blocks).
        fill: spec.spark && spec.kind === "count" ? `${line.color}22` : undefined,
        // A null rate (no calls in that bucket) is a gap, not a zero; a sparkline joins across
        // its gaps, or a day of sparse calls reads as scattered specks.
        spanGaps: Boolean(spec.spark),
        points: { show: spec.spark || !many, size: spec.spark ? 3 : 5 },
        value: (u, value) => show(value),
      })),
    ];
    const yRange =
      spec.kind === "rate"
        ? () => [0, 1]
        : (u, min, max) => [0, Math.max(1, max == null ? 1 : max * 1.1)];
    if (spec.spark) {
      return {
        width,
        height: SPARK_HEIGHT,
        padding: [4, 3, 4, 3], // a 0 % or full-scale point is drawn whole, not cut by the edge
        tzDate,
        legend: { show: false },
        cursor: { show: false },
        select: { show: false },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: true }, y: { range: yRange } },
        series,
      };
    }
    return {
      width,
      height: HEIGHT,
      tzDate,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true }, y: { range: yRange } },
      axes: [
        {
          stroke: "#667085",
          grid: { stroke: "#eef1f6" },
          ticks: { stroke: "#e4e7ec" },
          // Ticks on whole buckets of the report's grouping, labelled in the center's zone.
          incrs: TICK_STEPS[source.interval] || TICK_STEPS.day,
          values: (u, splits) => splits.map((seconds) => tickLabel(seconds, source)),
        },
        {
          stroke: "#667085",
          grid: { stroke: "#eef1f6" },
          ticks: { stroke: "#e4e7ec" },
          size: 56,
          // Whole numbers of calls: never a tick at 2.5.
          incrs: spec.kind === "rate" ? undefined : COUNT_STEPS,
          values: (u, values) =>
            values.map((v) => (spec.kind === "rate" ? `${Math.round(v * 100)} %` : show(v))),
        },
      ],
      series,
    };
  }

  const COUNT_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2500, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];
  const HOUR = 3600;
  const DAY = 24 * HOUR;
  const TICK_STEPS = {
    "15m": [900, 1800, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY],
    hour: [HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY],
    day: [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY],
    week: [7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY, 182 * DAY],
  };
  // Dates and 24-hour times as the rest of the portal writes them ("14 Mar", "09:30").
  const formats = new Map();
  function format(tz, options) {
    const key = tz + JSON.stringify(options);
    if (!formats.has(key)) formats.set(key, new Intl.DateTimeFormat("en-GB", { timeZone: tz, ...options }));
    return formats.get(key);
  }

  function tickLabel(seconds, source) {
    const date = new Date(seconds * 1000);
    const withTime = source.interval === "15m" || source.interval === "hour";
    const time = format(source.tz, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(date);
    if (withTime && time !== "00:00") return time;
    return format(source.tz, { day: "numeric", month: "short" }).format(date);
  }

  function bucketLabel(seconds, source) {
    // The bucket's start in the center's time zone, to the precision of the interval.
    const withTime = source.interval === "15m" || source.interval === "hour";
    const options = { weekday: "short", day: "numeric", month: "short", year: "numeric" };
    if (withTime) Object.assign(options, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    const label = format(source.tz, options).format(new Date(seconds * 1000));
    return source.interval === "week" ? `week of ${label}` : label;
  }

  function draw(element) {
    if (element._chart) return;
    const source = sourceOf(element);
    const spec = source && source.charts && source.charts[element.dataset.chart];
    if (!spec || !source.series.length) return;
    const width = Math.max(element.clientWidth, 120);
    element._chart = new uPlot(options(element, source, spec, width), columns(source, spec), element);
    element.dataset.chartPoints = String(source.series.length);
    // Follow the card's width (window resized, sidebar wrapped): uPlot draws at a fixed size.
    const observer = new ResizeObserver(() => {
      if (!element.isConnected) {
        observer.disconnect();
        element._chart.destroy();
        return;
      }
      const now = Math.max(element.clientWidth, 120);
      if (now !== element._chart.width) element._chart.setSize({ width: now, height: element._chart.height });
    });
    observer.observe(element);
  }

  function drawWithin(root) {
    if (root.matches && root.matches("[data-chart]")) draw(root);
    if (root.querySelectorAll) root.querySelectorAll("[data-chart]").forEach(draw);
  }

  // htmx.onLoad runs for the page once and again for every fragment htmx swaps in.
  htmx.onLoad(drawWithin);

  // A repeatable filter's summary says how many boxes are ticked ("all" when none is).
  document.addEventListener("change", (event) => {
    const box = event.target;
    const details = box.closest && box.closest("details.multi-filter");
    if (!details) return;
    const count = details.querySelectorAll("input[type=checkbox]:checked").length;
    details.querySelector("[data-multi-count]").textContent = count ? `${count} chosen` : "all";
  });

  // A refused filter answers 400 with the form's errors in place of the report: show them
  // rather than leave the old report standing as if the filter had applied.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.xhr.status === 400 && event.detail.target.closest("[data-report]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
