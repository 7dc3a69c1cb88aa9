// Monitor stage: the operations overview (traffic, latency, drift, performance, open alerts
// per deployment, refreshed every 15 s) and, for one deployment, drift checks with the
// ranked columns and overlaid distributions, drift over time, live performance against the
// baseline, an actuals upload, alerts (acknowledge / resolve) and alert rules. Everything
// goes through the JSON API with the session cookie and the X-CSRF-Token header.
(function () {
  var call = window.narrate.call, el = window.narrate.el, withPlotly = window.narrate.withPlotly;
  var REFRESH_MS = 15000;

  function errorText(body, fallback) {
    var err = body && body.error;
    if (!err) return fallback;
    if (typeof err === "string") return err;
    return (err.message || fallback) + (err.hint ? " " + err.hint : "");
  }

  function show(box, message) { if (box) { box.textContent = message; box.hidden = false; } }
  function fmt(v, digits) {
    if (v === null || v === undefined || isNaN(Number(v))) return "—";
    return String(parseFloat(Number(v).toPrecision(digits || 3)));
  }
  function badge(text, cls) { return el("span", { class: "level " + cls }, text); }
  function put(cell, node) { cell.textContent = ""; cell.appendChild(typeof node === "string" ? document.createTextNode(node) : node); }
  function enc(name) { return encodeURIComponent(name); }

  function plot(id, data, layout) {
    withPlotly(function () {
      var node = document.getElementById(id);
      var base = { margin: { t: 20, r: 20, b: 50, l: 60 }, autosize: true, font: { size: 12 }, height: 300 };
      window.Plotly.react(node, data, Object.assign(base, layout), { displaylogo: false, responsive: true });
      node.dataset.rendered = "1";
    });
  }

  // ---- operations overview ------------------------------------------------------------
  function refreshRow(tr) {
    var name = tr.dataset.name;
    var cell = function (f) { return tr.querySelector("[data-field=" + f + "]"); };
    call("GET", "/api/v1/deployments/" + enc(name) + "/stats?hours=24").then(function (r) {
      if (r.status !== 200) { put(cell("requests"), "—"); put(cell("latency"), "—"); return; }
      put(cell("requests"), String(r.body.total || 0));
      var p95 = r.body.arms && r.body.arms.primary ? r.body.arms.primary.latency_p95_ms : null;
      put(cell("latency"), p95 === null ? "—" : fmt(p95) + " ms");
    });
    call("GET", "/api/v1/deployments/" + enc(name) + "/drift-reports?limit=1").then(function (r) {
      var item = r.status === 200 && r.body.items && r.body.items[0];
      if (!item || !item.overall) { put(cell("drift"), badge(item ? item.status : "not checked", "level-unknown")); return; }
      put(cell("drift"), badge(item.overall.level, "level-" + item.overall.level));
    });
    call("GET", "/api/v1/deployments/" + enc(name) + "/performance?window=1d").then(function (r) {
      if (r.status !== 200 || !r.body.labelled) { put(cell("performance"), badge("no actuals yet", "level-unknown")); return; }
      var last = (r.body.windows || []).filter(function (w) { return w.n > 0; }).pop();
      var value = last ? last.metrics[r.body.primary_metric] : null;
      var text = r.body.primary_metric.replace("_", " ") + " " + fmt(value);
      put(cell("performance"), badge(r.body.degraded ? text + " (degraded)" : text, r.body.degraded ? "level-degraded" : "level-ok"));
    });
    call("GET", "/api/v1/alerts?deployment=" + enc(name) + "&status=open&limit=100").then(function (r) {
      put(cell("alerts"), r.status === 200 ? String(r.body.total !== undefined ? r.body.total : (r.body.items || []).length) : "—");
    });
  }

  var overview = document.getElementById("operations-table");
  function refreshOverview() {
    if (!overview) return;
    Array.prototype.forEach.call(overview.tBodies[0].rows, refreshRow);
  }
  refreshOverview();
  if (overview) setInterval(function () { if (!document.hidden) refreshOverview(); }, REFRESH_MS);

  var app = document.getElementById("monitor-app");
  if (!app) return;
  var name = app.dataset.name;
  var base = "/api/v1/deployments/" + enc(name);

  // ---- drift --------------------------------------------------------------------------
  function binLabels(h) {
    if (h.categories) return h.categories.map(String);
    var e = h.edges, out = ["≤ " + fmt(e[0])];
    for (var i = 0; i + 1 < e.length; i++) out.push(fmt(e[i]) + " – " + fmt(e[i + 1]));
    out.push("> " + fmt(e[e.length - 1]));
    return out;
  }

  function distribution(col) {
    if (!col.histogram) return;
    var labels = binLabels(col.histogram);
    plot("drift-distribution", [
      { type: "bar", name: "training data", x: labels, y: col.histogram.reference, marker: { color: "rgba(90,110,140,0.55)" } },
      { type: "bar", name: "recent traffic", x: labels, y: col.histogram.current, marker: { color: "rgba(31,63,191,0.75)" } },
    ], { barmode: "group", xaxis: { title: col.column, type: "category" }, yaxis: { title: "share of rows", tickformat: ".0%" }, legend: { orientation: "h", y: -0.3 }, margin: { t: 20, r: 10, b: 90, l: 60 } });
  }

  function renderReport(report) {
    document.getElementById("drift-report").hidden = false;
    var narrative = document.getElementById("drift-narrative");
    narrative.textContent = report.narrative ? report.narrative.text : "";
    if (report.narrative) narrative.title = "Facts behind this text:\n" + report.narrative.facts.map(function (f) { return f.name + " = " + fmt(f.value, 4) + " (" + f.source + ")"; }).join("\n");
    var body = document.querySelector("#drift-columns tbody");
    body.textContent = "";
    var rows = (report.columns || []).slice();
    if (report.prediction) rows.unshift(Object.assign({}, report.prediction, { column: report.prediction.column + " (predictions)" }));
    rows.forEach(function (c, i) {
      var tr = el("tr", { "data-column": c.column, "data-level": c.level });
      tr.appendChild(el("td", {}, c.column));
      var lv = el("td"); lv.appendChild(badge(c.level, "level-" + c.level)); tr.appendChild(lv);
      tr.appendChild(el("td", { class: "num" }, fmt(c.psi)));
      tr.appendChild(el("td", { class: "num" }, c.missing_rate_change === null ? "—" : (100 * c.missing_rate_change).toFixed(1) + " pts"));
      tr.appendChild(el("td", { class: "num" }, c.importance_rank ? "#" + c.importance_rank : "—"));
      tr.addEventListener("click", function () {
        Array.prototype.forEach.call(body.querySelectorAll("tr.selected"), function (t) { t.classList.remove("selected"); });
        tr.classList.add("selected");
        distribution(c);
      });
      body.appendChild(tr);
      if (i === 0) { tr.classList.add("selected"); distribution(c); }
    });
  }

  function loadHistory() {
    call("GET", base + "/drift-reports?limit=50").then(function (r) {
      if (r.status !== 200) return;
      var ready = (r.body.items || []).filter(function (i) { return i.status === "ready" && i.overall; }).reverse();
      if (!ready.length) { document.getElementById("drift-history").textContent = "No drift check yet."; return; }
      var levels = { none: 0, low: 1, medium: 2, high: 3 };
      plot("drift-history", [
        { type: "scatter", mode: "lines+markers", name: "share of columns drifted", x: ready.map(function (i) { return i.created_at; }), y: ready.map(function (i) { return i.overall.share_drifted; }), yaxis: "y" },
        { type: "scatter", mode: "markers", name: "overall level", x: ready.map(function (i) { return i.created_at; }), y: ready.map(function (i) { return levels[i.overall.level]; }), yaxis: "y2", marker: { size: 10, symbol: "diamond" } },
      ], { yaxis: { title: "share drifted", tickformat: ".0%", rangemode: "tozero" }, yaxis2: { overlaying: "y", side: "right", range: [-0.2, 3.2], tickvals: [0, 1, 2, 3], ticktext: ["none", "low", "medium", "high"] }, legend: { orientation: "h", y: -0.3 }, margin: { t: 20, r: 70, b: 80, l: 60 } });
      if (document.getElementById("drift-report").hidden) {
        call("GET", "/api/v1/drift-reports/" + ready[ready.length - 1].report_id).then(function (full) {
          if (full.status === 200) renderReport(full.body);
        });
      }
    });
  }
  loadHistory();

  function followJob(jobId, bar, done) {
    call("GET", "/api/v1/jobs/" + jobId).then(function (r) {
      if (r.status !== 200) { done(r.body.error ? errorText(r.body, "The job could not be read.") : "The job could not be read."); return; }
      if (bar) bar.style.width = Math.round(100 * (r.body.progress || 0)) + "%";
      if (r.body.status === "succeeded") { done(null); return; }
      if (r.body.status === "failed" || r.body.status === "cancelled") {
        done((r.body.error && r.body.error.message) || r.body.message || "The job " + r.body.status + ".");
        return;
      }
      setTimeout(function () { followJob(jobId, bar, done); }, 700);
    });
  }

  var driftForm = document.getElementById("drift-form");
  if (driftForm) {
    driftForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var box = document.getElementById("drift-error");
      var progress = document.getElementById("drift-progress");
      var bar = progress.querySelector(".bar");
      box.hidden = true;
      var button = driftForm.querySelector("button");
      button.disabled = true;
      call("POST", base + "/drift", { window: document.getElementById("drift-window").value }).then(function (r) {
        if (r.status !== 202) { button.disabled = false; show(box, errorText(r.body, "The drift check could not start.")); return; }
        progress.hidden = false;
        bar.style.width = "2%";
        followJob(r.body.job_id, bar, function (err) {
          button.disabled = false;
          progress.hidden = true;
          if (err) { show(box, err); return; }
          call("GET", "/api/v1/drift-reports/" + r.body.created_id).then(function (full) {
            if (full.status === 200) renderReport(full.body);
            loadHistory();
            refreshOverview();
          });
        });
      });
    });
  }

  // ---- performance --------------------------------------------------------------------
  var perfWindow = document.getElementById("performance-window");
  function loadPerformance() {
    var status = document.getElementById("performance-status");
    var narrative = document.getElementById("performance-narrative");
    call("GET", base + "/performance?window=" + perfWindow.value).then(function (r) {
      if (r.status !== 200) { status.textContent = errorText(r.body, "Performance could not be read."); return; }
      var p = r.body, metric = p.primary_metric;
      status.textContent = "";
      status.appendChild(badge(p.labelled ? (p.degraded ? "degraded" : "holding up") : "no actuals yet", p.labelled ? (p.degraded ? "level-degraded" : "level-ok") : "level-unknown"));
      status.appendChild(document.createTextNode(" " + p.labelled.toLocaleString() + " predictions with an actual outcome; " + metric.replace("_", " ") + " on the test data: " + fmt(p.baseline[metric])));
      narrative.textContent = p.narrative.text;
      narrative.hidden = false;
      var windows = p.windows.filter(function (w) { return w.n > 0 && w.metrics[metric] !== undefined && w.metrics[metric] !== null; });
      var x = windows.map(function (w) { return w.start; });
      var y = windows.map(function (w) { return w.metrics[metric]; });
      var hi = windows.map(function (w) { var i = (w.intervals || {})[metric]; return i ? i[1] - w.metrics[metric] : 0; });
      var lo = windows.map(function (w) { var i = (w.intervals || {})[metric]; return i ? w.metrics[metric] - i[0] : 0; });
      var data = [{ type: "scatter", mode: "lines+markers", name: metric.replace("_", " "), x: x, y: y, error_y: { type: "data", symmetric: false, array: hi, arrayminus: lo }, text: windows.map(function (w) { return w.n + " cases"; }) }];
      var shapes = p.baseline[metric] === undefined ? [] : [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: p.baseline[metric], y1: p.baseline[metric], line: { dash: "dash", color: "#888" } }];
      plot("performance-chart", data, { yaxis: { title: metric.replace("_", " ") }, shapes: shapes, showlegend: false });
    });
  }
  perfWindow.addEventListener("change", loadPerformance);
  loadPerformance();

  var actualsForm = document.getElementById("actuals-form");
  if (actualsForm) {
    actualsForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var box = document.getElementById("actuals-error");
      var result = document.getElementById("actuals-result");
      box.hidden = true;
      result.textContent = "";
      var form = new FormData();
      form.append("file", document.getElementById("actuals-file").files[0]);
      form.append("id_column", document.getElementById("actuals-id").value);
      form.append("actual_column", document.getElementById("actuals-actual").value);
      call("POST", base + "/actuals", form).then(function (r) {
        if (r.status !== 200) { show(box, errorText(r.body, "The actuals could not be stored.")); return; }
        var b = r.body;
        result.textContent = "Received " + b.received + " outcomes: " + b.matched + " matched a logged prediction, " + b.replaced + " replaced an earlier outcome, " + b.unmatched.count + " matched none" + (b.unmatched.count ? " (e.g. " + b.unmatched.examples.slice(0, 3).join(", ") + ")" : "") + ".";
        loadPerformance();
        refreshOverview();
      });
    });
  }

  // ---- alerts and rules ---------------------------------------------------------------
  var canWrite = app.dataset.canWrite === "yes";
  function loadAlerts() {
    call("GET", "/api/v1/alerts?deployment=" + enc(name) + "&limit=50").then(function (r) {
      var body = document.querySelector("#alerts-table tbody");
      body.textContent = "";
      var items = r.status === 200 ? r.body.items || [] : [];
      document.getElementById("alerts-empty").hidden = items.length > 0;
      items.forEach(function (a) {
        var tr = el("tr", { "data-alert": a.alert_id, "data-status": a.status });
        tr.appendChild(el("td", {}, String(a.last_at).slice(0, 16).replace("T", " ")));
        var sev = el("td"); sev.appendChild(badge(a.severity, "sev-" + a.severity)); tr.appendChild(sev);
        tr.appendChild(el("td", {}, a.kind.replace("_", " ")));
        tr.appendChild(el("td", {}, a.status));
        tr.appendChild(el("td", { class: "num" }, String(a.count)));
        tr.appendChild(el("td", {}, a.message));
        var actions = el("td");
        if (canWrite && a.status !== "resolved") {
          if (a.status === "open") actions.appendChild(action("Acknowledge", a.alert_id, "acknowledge"));
          actions.appendChild(action("Resolve", a.alert_id, "resolve"));
        }
        tr.appendChild(actions);
        body.appendChild(tr);
      });
    });
  }

  function action(label, id, verb) {
    var b = el("button", { type: "button", class: "small", "data-testid": "alert-" + verb }, label);
    b.addEventListener("click", function () {
      b.disabled = true;
      call("POST", "/api/v1/alerts/" + id + "/" + verb).then(function () { loadAlerts(); refreshOverview(); });
    });
    return b;
  }

  function describeRule(rule) {
    var what = rule.kind === "drift" ? "drift reaches " + rule.level : rule.kind.replace("_", " ") + (rule.threshold !== null ? " reaches " + fmt(rule.threshold) : "");
    var to = rule.channels.map(function (c) { return c.type === "webhook" ? c.url : c.type === "email" ? c.to : "here"; }).join(", ");
    return "When " + what + ": tell " + to + " (" + rule.severity + ", at most once per " + Math.round(rule.cooldown_s / 60) + " min)" + (rule.enabled ? "" : " — paused");
  }

  function loadRules() {
    call("GET", "/api/v1/alert-rules?deployment=" + enc(name) + "&limit=100").then(function (r) {
      var list = document.getElementById("rules-list");
      list.textContent = "";
      (r.status === 200 ? r.body.items || [] : []).forEach(function (rule) {
        list.appendChild(el("li", { "data-rule": rule.rule_id }, describeRule(rule)));
      });
      if (!list.children.length) list.appendChild(el("li", { class: "muted" }, "No rules yet."));
    });
  }
  loadAlerts();
  loadRules();
  setInterval(function () { if (!document.hidden) loadAlerts(); }, REFRESH_MS);

  var ruleForm = document.getElementById("rule-form");
  if (ruleForm) {
    var kind = document.getElementById("rule-kind");
    var channel = document.getElementById("rule-channel");
    var sync = function () {
      document.getElementById("rule-level-label").hidden = kind.value !== "drift";
      document.getElementById("rule-threshold-label").hidden = kind.value === "drift" || kind.value === "performance";
      document.getElementById("rule-target-label").hidden = channel.value === "in_app";
    };
    kind.addEventListener("change", sync);
    channel.addEventListener("change", sync);
    sync();
    ruleForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var box = document.getElementById("rule-error");
      box.hidden = true;
      var body = { deployment: name, kind: kind.value, channels: [] };
      if (kind.value === "drift") body.level = document.getElementById("rule-level").value;
      var threshold = document.getElementById("rule-threshold").value;
      if (kind.value !== "drift" && kind.value !== "performance" && threshold !== "") body.threshold = Number(threshold);
      var target = document.getElementById("rule-target").value.trim();
      if (channel.value === "in_app") body.channels.push({ type: "in_app" });
      else if (channel.value === "email") body.channels.push({ type: "email", to: target });
      else body.channels.push({ type: "webhook", url: target });
      call("POST", "/api/v1/alert-rules", body).then(function (r) {
        if (r.status !== 201) { show(box, errorText(r.body, "The rule could not be saved.")); return; }
        loadRules();
      });
    });
  }

  // ---- retraining ---------------------------------------------------------------------
  // Runs newest first: status, champion vs challenger on the same window, the narrative,
  // Promote / Reject while a run awaits a decision, and "Retrain now".
  var RUN_LABELS = {
    queued: "queued", running: "running", awaiting_decision: "awaiting decision",
    promoting: "promoting", promoted: "promoted", rejected: "rejected", failed: "failed"
  };
  var RUN_LEVELS = { awaiting_decision: "level-medium", promoted: "level-none", failed: "level-high" };

  function metricRow(label, side, metric) {
    var tr = el("tr");
    tr.appendChild(el("td", {}, label));
    var value = side && side.metrics ? side.metrics[metric] : null;
    var interval = side && side.intervals ? side.intervals[metric] : null;
    tr.appendChild(el("td", { class: "num", "data-field": "score" }, fmt(value)));
    tr.appendChild(el("td", { class: "num small" }, interval ? fmt(interval[0]) + "–" + fmt(interval[1]) : "—"));
    return tr;
  }

  function runCard(run) {
    var box = el("div", { class: "retrain-run", "data-run": run.retrain_run_id, "data-testid": "retrain-item" });
    var head = el("p", {});
    head.appendChild(badge(RUN_LABELS[run.status] || run.status, RUN_LEVELS[run.status] || "level-unknown"));
    head.appendChild(document.createTextNode(" " + new Date(run.created_at).toLocaleString() + " · " + run.trigger + " · " + run.policy +
      (run.decided_by ? " · decided by " + (run.decided_by === "auto" ? "the margin rule" : "a person") : "")));
    box.appendChild(head);
    if (run.metrics && run.metric) {
      var table = el("table", { class: "table small", "data-testid": "retrain-metrics" });
      var hr = el("tr");
      ["", run.metric.replace("_", " "), "95% interval"].forEach(function (h) { hr.appendChild(el("th", {}, h)); });
      var thead = el("thead"); thead.appendChild(hr); table.appendChild(thead);
      var tbody = el("tbody");
      tbody.appendChild(metricRow("Deployed (champion)", run.metrics.champion, run.metric));
      tbody.appendChild(metricRow("Challenger", run.metrics.challenger, run.metric));
      table.appendChild(tbody);
      box.appendChild(table);
    }
    if (run.narrative) box.appendChild(el("p", { class: "narrative", "data-testid": "retrain-narrative" }, run.narrative.text));
    if (run.error) box.appendChild(el("p", { class: "alert error" }, run.error));
    if (canWrite && run.status === "awaiting_decision") {
      var row = el("p", { class: "row" });
      row.appendChild(decideButton(run, "promote", "Promote", "primary"));
      row.appendChild(decideButton(run, "reject", "Reject", ""));
      box.appendChild(row);
    }
    return box;
  }

  function decideButton(run, verb, label, cls) {
    var b = el("button", { type: "button", class: cls, "data-testid": "retrain-" + verb }, label);
    b.addEventListener("click", function () {
      b.disabled = true;
      var box = document.getElementById("retrain-error");
      call("POST", "/api/v1/retrain-runs/" + run.retrain_run_id + "/" + verb, {}).then(function (r) {
        if (r.status !== 200) { show(box, errorText(r.body, "The decision could not be recorded.")); b.disabled = false; }
        loadRuns();
      });
    });
    return b;
  }

  function loadRuns() {
    call("GET", "/api/v1/deployments/" + enc(name) + "/retrain-runs?limit=10").then(function (r) {
      var list = document.getElementById("retrain-runs");
      if (!list) return;
      list.textContent = "";
      var items = r.status === 200 ? r.body.items || [] : [];
      items.forEach(function (run) { list.appendChild(runCard(run)); });
      document.getElementById("retrain-empty").hidden = items.length > 0;
      var busy = items.some(function (run) { return run.status === "queued" || run.status === "running"; });
      var bar = document.getElementById("retrain-progress");
      if (bar) bar.hidden = !busy;
      if (busy) setTimeout(loadRuns, 2000);
    });
  }
  loadRuns();

  var retrainForm = document.getElementById("retrain-form");
  if (retrainForm) {
    retrainForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var box = document.getElementById("retrain-error");
      box.hidden = true;
      var body = { policy: document.getElementById("retrain-policy").value };
      if (document.getElementById("retrain-auto").checked) {
        body.auto_promote = true;
        body.margin = Number(document.getElementById("retrain-margin").value || 0);
      }
      call("POST", "/api/v1/deployments/" + enc(name) + "/retrain", body).then(function (r) {
        if (r.status !== 202) { show(box, errorText(r.body, "The retrain run could not start.")); return; }
        loadRuns();
      });
    });
  }
})();
