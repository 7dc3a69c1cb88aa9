// Interpret stage: importances (bar chart with expandable parts), partial dependence with
// ICE curves over the data's distribution, a row picker with a waterfall of contributions
// and its narrative (facts on hover), and what-if controls. Everything goes through the
// JSON API with the session cookie and the X-CSRF-Token header.
(function () {
  var app = document.getElementById("interpret-app");
  if (!app) return;
  var call = window.narrate.call, el = window.narrate.el, withPlotly = window.narrate.withPlotly;
  var mv = app.dataset.version;
  var target = app.dataset.target || "";
  var signature = JSON.parse(document.getElementById("interpret-signature").textContent || "{}");
  var specs = {};
  (signature.columns || []).forEach(function (c) { specs[c.name] = c; });
  var MAX_CONTROLS = 6;
  var state = { order: [], row: null, base: null };

  function errorText(body, fallback) {
    var err = body && body.error;
    if (!err) return fallback;
    if (typeof err === "string") return err;
    return (err.message || fallback) + (err.hint ? " " + err.hint : "");
  }

  function show(box, message) { box.textContent = message; box.hidden = false; }

  function fmt(v) {
    if (v === null || v === undefined || v === "") return "(missing)";
    if (typeof v === "number") return String(parseFloat(v.toPrecision(4)));
    return String(v);
  }

  function plot(id, data, layout) {
    withPlotly(function () {
      var node = document.getElementById(id);
      var base = { margin: { t: 20, r: 20, b: 50, l: 140 }, autosize: true, font: { size: 12 } };
      window.Plotly.react(node, data, Object.assign(base, layout), { displaylogo: false, responsive: true });
      node.dataset.rendered = "1";
    });
  }

  // ---- importances ------------------------------------------------------------------
  function renderImportances(body) {
    var cols = body.columns || [];
    state.order = cols.map(function (c) { return c.column; });
    var top = cols.slice(0, 20).reverse();
    plot("importance-chart", [{
      type: "bar", orientation: "h",
      x: top.map(function (c) { return c.importance; }),
      y: top.map(function (c) { return c.column; }),
      error_x: { type: "data", array: top.map(function (c) { return c.std; }), visible: true },
      hovertemplate: "%{y}: %{x:.4f}<extra></extra>",
    }], { xaxis: { title: "Drop in " + body.score.replace("neg_", "") + " when shuffled" }, height: Math.max(260, 26 * top.length + 80) });
    var status = document.getElementById("importances-status");
    status.textContent = "Computed on " + body.n_rows.toLocaleString() + " rows (" + body.rows + "), " + body.repeats + " shuffles per column; the whiskers are the spread.";
    var parts = document.getElementById("importance-parts");
    parts.textContent = "";
    cols.forEach(function (c) {
      var names = Object.keys(c.parts || {});
      if (names.length < 2) return;
      var d = el("details", { "data-column": c.column });
      d.appendChild(el("summary", {}, c.column + " is made of " + names.length + " parts"));
      var ul = el("ul", { class: "small" });
      names.sort(function (a, b) { return c.parts[b] - c.parts[a]; }).forEach(function (n) {
        ul.appendChild(el("li", {}, n + ": " + fmt(c.parts[n]) + " mean |contribution|"));
      });
      d.appendChild(ul);
      parts.appendChild(d);
    });
    fillDependenceColumns();
  }

  call("GET", "/api/v1/model-versions/" + mv + "/importances").then(function (r) {
    if (r.status !== 200) {
      document.getElementById("importances-status").hidden = true;
      show(document.getElementById("importances-error"), errorText(r.body, "The importances could not be computed."));
      state.order = (signature.columns || []).map(function (c) { return c.name; });
      fillDependenceColumns();
      return;
    }
    renderImportances(r.body);
  });

  // ---- dependence -------------------------------------------------------------------
  var depSelect = document.getElementById("dependence-column");
  function fillDependenceColumns() {
    depSelect.textContent = "";
    state.order.forEach(function (name) {
      var spec = specs[name];
      if (spec && spec.type === "datetime") return;  // dates have no grid to move along
      depSelect.appendChild(el("option", { value: name }, name));
    });
    depSelect.disabled = !depSelect.options.length;
    if (depSelect.options.length) loadDependence(depSelect.value);
    renderControls();
  }
  depSelect.addEventListener("change", function () { loadDependence(depSelect.value); });

  function loadDependence(column) {
    var box = document.getElementById("dependence-error");
    box.hidden = true;
    call("POST", "/api/v1/model-versions/" + mv + "/dependence", { column: column, grid_points: 20, rows: 300, ice_rows: 20 }).then(function (r) {
      if (r.status !== 200) { show(box, errorText(r.body, "The dependence plot could not be computed.")); return; }
      var d = r.body;
      var x = d.grid.map(function (g) { return d.kind === "categorical" ? String(g) : g; });
      var data = d.ice.map(function (c) {
        return { x: x, y: c.values, type: "scatter", mode: "lines", line: { width: 1, color: "rgba(60,90,200,0.25)" }, hoverinfo: "skip", showlegend: false };
      });
      data.push({ x: x, y: d.average, type: "scatter", mode: d.kind === "categorical" ? "lines+markers" : "lines", name: "average (partial dependence)", line: { width: 4, color: "#1f3fbf" } });
      var dist = d.distribution || {};
      var bars = null;
      if (d.kind === "numeric" && dist.edges) {
        var mids = [];
        for (var i = 0; i + 1 < dist.edges.length; i++) mids.push((dist.edges[i] + dist.edges[i + 1]) / 2);
        bars = { x: mids, y: dist.counts };
      } else if (dist.categories) {
        bars = { x: dist.categories.map(String), y: dist.counts };
      }
      var most = 1;
      if (bars) {
        most = Math.max.apply(null, bars.y.concat([1]));
        // first, so the curves are drawn over the bars
        data.unshift({ x: bars.x, y: bars.y, type: "bar", name: "rows", yaxis: "y2", marker: { color: "rgba(120,120,120,0.25)" }, hovertemplate: "%{y} rows<extra></extra>" });
      }
      plot("dependence-chart", data, {
        margin: { t: 20, r: 60, b: 60, l: 70 },
        xaxis: { title: column, type: d.kind === "categorical" ? "category" : "linear" },
        yaxis: { title: d.target },
        // the bars fill the lower third, under the curves
        yaxis2: { title: "rows", overlaying: "y", side: "right", showgrid: false, range: [0, most * 3] },
        legend: { orientation: "h", y: -0.25 }, height: 380,
      });
    });
  }

  // ---- rows and explanations --------------------------------------------------------
  var picker = document.getElementById("row-picker");
  var typed = document.getElementById("row-json");
  if (signature.example_row) typed.value = JSON.stringify(signature.example_row, null, 2);

  function inputRow(row) {
    var out = {};
    Object.keys(row).forEach(function (k) { if (specs[k]) out[k] = row[k]; });
    return out;
  }

  if (app.dataset.dataset) {
    var url = "/api/v1/datasets/" + app.dataset.dataset + "/rows?version=" + app.dataset.rowsVersion + "&limit=15";
    call("GET", url).then(function (r) {
      if (r.status !== 200) return;
      var items = r.body.items || r.body.rows || [];
      if (!items.length) return;
      var columns = Object.keys(items[0]).filter(function (c) { return specs[c] || c === target; });
      var head = el("tr");
      head.appendChild(el("th", {}, ""));
      columns.forEach(function (c) { head.appendChild(el("th", {}, c === target ? c + " (actual)" : c)); });
      picker.tHead.appendChild(head);
      items.forEach(function (row, i) {
        var tr = el("tr", { "data-index": String(i) });
        var td = el("td");
        var b = el("button", { type: "button", class: "small", "data-testid": "explain-row" }, "Explain");
        b.addEventListener("click", function () { explain(inputRow(row), tr); });
        td.appendChild(b);
        tr.appendChild(td);
        columns.forEach(function (c) { tr.appendChild(el("td", {}, fmt(row[c]))); });
        picker.tBodies[0].appendChild(tr);
      });
    });
  }

  document.getElementById("explain-typed").addEventListener("click", function () {
    var row;
    try { row = JSON.parse(typed.value); } catch (e) {
      show(document.getElementById("explain-error"), "That is not valid JSON: " + e.message);
      return;
    }
    explain(row, null);
  });

  function narrativeNode(narrative) {
    var p = document.getElementById("explain-narrative");
    p.textContent = narrative.text;
    var facts = (narrative.facts || []).map(function (f) { return f.name + " = " + fmt(f.value) + " (" + f.source + ")"; });
    p.title = facts.length ? "Facts behind this sentence:\n" + facts.join("\n") : "";
  }

  function explain(row, tr) {
    var box = document.getElementById("explain-error");
    box.hidden = true;
    Array.prototype.forEach.call(picker.querySelectorAll("tr.selected"), function (t) { t.classList.remove("selected"); });
    if (tr) tr.classList.add("selected");
    call("POST", "/api/v1/model-versions/" + mv + "/explain", { rows: [row] }).then(function (r) {
      if (r.status !== 200) { show(box, errorText(r.body, "The row could not be explained.")); return; }
      var e = r.body.explanations[0];
      state.row = row;
      document.getElementById("explain-result").hidden = false;
      document.getElementById("explain-prediction").textContent = fmt(e.prediction);
      narrativeNode(e.narrative);
      waterfall(e.natural);
      renderControls();
      whatIf();
    });
  }

  function waterfall(natural) {
    var entries = Object.keys(natural.contributions).map(function (k) { return [k, natural.contributions[k]]; });
    entries.sort(function (a, b) { return Math.abs(b[1]) - Math.abs(a[1]); });
    var shown = entries.slice(0, 12);
    var rest = entries.slice(12).reduce(function (s, e) { return s + e[1]; }, 0);
    var labels = ["typical answer"].concat(shown.map(function (e) { return e[0]; }));
    var values = [natural.base_value].concat(shown.map(function (e) { return e[1]; }));
    var measures = ["absolute"].concat(shown.map(function () { return "relative"; }));
    if (entries.length > 12) { labels.push(entries.length - 12 + " other columns"); values.push(rest); measures.push("relative"); }
    labels.push("this row"); values.push(natural.output); measures.push("total");
    var scale = natural.scale === "probability" ? "probability" : target;
    plot("waterfall-chart", [{
      type: "waterfall", orientation: "v", x: labels, y: values, measure: measures,
      text: values.map(function (v, i) { return measures[i] === "relative" ? (v >= 0 ? "+" : "") + fmt(v) : fmt(v); }),
      textposition: "outside", connector: { line: { color: "#bbb" } },
      increasing: { marker: { color: "#c0392b" } }, decreasing: { marker: { color: "#2e86c1" } }, totals: { marker: { color: "#555" } },
    }], { margin: { t: 20, r: 20, b: 110, l: 60 }, yaxis: { title: scale }, height: 400, showlegend: false });
  }

  // ---- what-if ----------------------------------------------------------------------
  var controls = document.getElementById("what-if-controls");
  function controlColumns() {
    var names = state.order.length ? state.order : Object.keys(specs);
    return names.filter(function (n) {
      var s = specs[n];
      return s && (s.type === "number" || s.type === "integer" || ((s.type === "category" || s.type === "boolean") && s.categories && s.categories.length));
    }).slice(0, MAX_CONTROLS);
  }

  function renderControls() {
    if (!state.row) return;
    document.getElementById("what-if-section").hidden = false;
    controls.textContent = "";
    controlColumns().forEach(function (name) {
      var spec = specs[name];
      var wrap = el("label", { class: "what-if-field", "data-column": name });
      wrap.appendChild(el("span", { class: "what-if-name" }, name));
      var current = state.row[name];
      var input;
      if (spec.type === "number" || spec.type === "integer") {
        var lo = Number(spec.min), hi = Number(spec.max);
        input = el("input", { type: "range", min: String(lo), max: String(hi), step: spec.type === "integer" ? "1" : String((hi - lo) / 100 || 1) });
        input.value = current === null || current === undefined || current === "" ? String((lo + hi) / 2) : String(current);
        var out = el("output", {}, fmt(Number(input.value)));
        input.addEventListener("input", function () { input.dataset.touched = "1"; out.textContent = fmt(Number(input.value)); });
        input.addEventListener("change", function () { input.dataset.touched = "1"; whatIf(); });
        wrap.appendChild(input);
        wrap.appendChild(out);
      } else {
        input = el("select");
        spec.categories.forEach(function (c) {
          var o = el("option", { value: JSON.stringify(c) }, String(c));
          if (String(c) === String(current)) o.selected = true;
          input.appendChild(o);
        });
        input.addEventListener("change", function () { input.dataset.touched = "1"; whatIf(); });
        wrap.appendChild(input);
      }
      input.dataset.column = name;
      controls.appendChild(wrap);
    });
  }

  function changes() {
    var out = {};
    Array.prototype.forEach.call(controls.querySelectorAll("[data-column]"), function (input) {
      if (input.tagName === "LABEL" || input.dataset.touched !== "1") return;  // only what was moved
      var name = input.dataset.column;
      var value = input.tagName === "SELECT" ? JSON.parse(input.value) : Number(input.value);
      if (String(value) !== String(state.row[name])) out[name] = value;
    });
    return out;
  }

  function whatIf() {
    if (!state.row) return;
    var box = document.getElementById("what-if-error");
    var result = document.getElementById("what-if-result");
    box.hidden = true;
    var variant = changes();
    if (!Object.keys(variant).length) {
      result.dataset.delta = "0";
      result.textContent = "Move a control to see how the answer changes.";
      return;
    }
    call("POST", "/api/v1/model-versions/" + mv + "/what-if", { row: state.row, variants: [variant] }).then(function (r) {
      if (r.status !== 200) { show(box, errorText(r.body, "The change could not be scored.")); return; }
      var b = r.body, v = b.variants[0];
      var names = Object.keys(variant);
      var pct = b.explained_class !== null && b.explained_class !== undefined;
      var show1 = function (x) { return pct ? (100 * x).toFixed(1) + "%" : fmt(x); };
      result.dataset.delta = String(v.delta);
      var sign = v.delta > 0 ? "up" : v.delta < 0 ? "down" : "not at all";
      var by = pct ? (100 * Math.abs(v.delta)).toFixed(1) + " points" : fmt(Math.abs(v.delta));
      result.textContent = "With " + names.map(function (n) { return n + " = " + fmt(variant[n]); }).join(", ") +
        " the model answers " + fmt(v.prediction) + " (" + b.target + ": " + show1(v.output) + "), " +
        (v.delta === 0 ? "no change" : sign + " " + by) + " from " + show1(b.base.output) + ".";
    });
  }
})();
