// Transform stage: build a recipe from the step catalog, preview it live, apply it as a
// job with a progress bar, and draw the lineage graph.
(function () {
  var app = document.getElementById("transform-app");
  if (!app) return;
  var datasetId = app.dataset.dataset;
  var versionId = app.dataset.version;
  var columns = JSON.parse(document.getElementById("transform-columns").textContent);
  var steps = JSON.parse(document.getElementById("transform-initial").textContent) || [];
  var catalog = {};
  var csrf = document.body.dataset.csrf || "";
  var previewTimer = null;
  var previewSeq = 0;

  function api(method, url, body, contentType) {
    var raw = typeof body === "string";
    return fetch(url, {
      method: method,
      headers: { "Content-Type": contentType || "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: body === undefined || body === null ? undefined : (raw ? body : JSON.stringify(body)),
      credentials: "same-origin",
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; });
    });
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fieldFor(name, prop, value, onChange) {
    var label = el("label", {}, prop.title || name);
    var input;
    var type = prop.type || (prop.anyOf && prop.anyOf[0].type) || "string";
    if (prop.enum) {
      input = el("select", { name: name });
      prop.enum.forEach(function (v) { var o = el("option", { value: v }, v); if (v === value) o.selected = true; input.appendChild(o); });
      input.addEventListener("change", function () { onChange(input.value); });
    } else if (type === "array" && prop.items && prop.items.type === "string") {
      input = el("select", { name: name, multiple: "multiple", size: Math.min(6, columns.length) });
      columns.forEach(function (c) { var o = el("option", { value: c }, c); if ((value || []).indexOf(c) >= 0) o.selected = true; input.appendChild(o); });
      input.addEventListener("change", function () { onChange(Array.from(input.selectedOptions).map(function (o) { return o.value; })); });
    } else if (type === "boolean") {
      input = el("input", { type: "checkbox", name: name });
      input.checked = value === undefined ? !!prop["default"] : !!value;
      input.addEventListener("change", function () { onChange(input.checked); });
    } else if (type === "integer" || type === "number") {
      input = el("input", { type: "number", name: name, step: type === "integer" ? "1" : "any" });
      if (value !== undefined && value !== null) input.value = value;
      else if (prop["default"] !== undefined && prop["default"] !== null) input.placeholder = prop["default"];
      input.addEventListener("input", function () { onChange(input.value === "" ? undefined : Number(input.value)); });
    } else if (type === "object" || type === "array") {
      input = el("textarea", { name: name, rows: "2", placeholder: "JSON" });
      if (value !== undefined) input.value = JSON.stringify(value);
      input.addEventListener("change", function () { try { onChange(JSON.parse(input.value)); } catch (e) { input.setCustomValidity("Not valid JSON"); input.reportValidity(); } });
    } else if (name === "column" || name === "stratify") {
      input = el("select", { name: name });
      input.appendChild(el("option", { value: "" }, "—"));
      columns.forEach(function (c) { var o = el("option", { value: c }, c); if (c === value) o.selected = true; input.appendChild(o); });
      input.addEventListener("change", function () { onChange(input.value || undefined); });
    } else {
      input = el("input", { type: "text", name: name });
      if (value !== undefined && value !== null) input.value = value;
      input.addEventListener("input", function () { onChange(input.value === "" ? undefined : input.value); });
    }
    input.title = prop.description || "";
    label.appendChild(input);
    return label;
  }

  function renderSteps(issues) {
    var list = document.getElementById("recipe-steps");
    list.innerHTML = "";
    steps.forEach(function (step, i) {
      var spec = catalog[step.step];
      var li = el("li", { "data-step": step.step });
      if (step.enabled === false) li.className = "disabled";
      var head = el("div", { "class": "step-head" });
      head.appendChild(el("strong", {}, (i + 1) + ". " + (spec ? spec.title : step.step)));
      var tools = el("span");
      [["↑", "up"], ["↓", "down"], [step.enabled === false ? "Enable" : "Disable", "toggle"], ["✕", "remove"]].forEach(function (b) {
        var btn = el("button", { type: "button", "class": "small", "data-action": b[1], "aria-label": b[1] + " step " + (i + 1) }, b[0]);
        btn.addEventListener("click", function () { act(b[1], i); });
        tools.appendChild(btn);
      });
      head.appendChild(tools);
      li.appendChild(head);
      if (spec) {
        var form = el("div", { "class": "step-form" });
        var props = spec.json_schema.properties || {};
        Object.keys(props).forEach(function (name) {
          if (name === "step" || name === "enabled") return;
          form.appendChild(fieldFor(name, props[name], step[name], function (v) {
            if (v === undefined) delete step[name]; else step[name] = v;
            schedulePreview();
          }));
        });
        li.appendChild(form);
      }
      (issues || []).filter(function (x) { return x.step_index === i; }).forEach(function (x) {
        li.appendChild(el("div", { "class": "issue" }, x.message));
      });
      list.appendChild(li);
    });
    document.getElementById("apply-recipe").disabled = steps.length === 0;
  }

  function act(action, i) {
    if (action === "remove") steps.splice(i, 1);
    if (action === "toggle") steps[i].enabled = steps[i].enabled === false;
    if (action === "up" && i > 0) steps.splice(i - 1, 0, steps.splice(i, 1)[0]);
    if (action === "down" && i < steps.length - 1) steps.splice(i + 1, 0, steps.splice(i, 1)[0]);
    renderSteps();
    schedulePreview();
  }

  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(runPreview, 250);
  }

  function runPreview() {
    var seq = ++previewSeq;
    var issuesBox = document.getElementById("preview-issues");
    if (!steps.length) { document.getElementById("preview-summary").textContent = "Add a step to see its effect."; document.getElementById("preview-table").innerHTML = ""; document.getElementById("preview-stats").innerHTML = ""; return; }
    var started = performance.now();
    api("POST", "/api/v1/datasets/" + datasetId + "/recipes/preview", { steps: steps, version_id: versionId }).then(function (r) {
      if (seq !== previewSeq) return;
      document.getElementById("preview-timing").textContent = "(" + Math.round(performance.now() - started) + " ms)";
      if (r.status !== 200) {
        var err = r.body.error || {};
        var issues = (err.details && err.details.issues) || [];
        issuesBox.textContent = err.message || "The preview failed.";
        issuesBox.hidden = false;
        renderSteps(issues);
        return;
      }
      issuesBox.hidden = true;
      renderSteps();
      showPreview(r.body);
    });
  }

  function showPreview(p) {
    var rows = p.rows || {};
    var cols = p.columns || {};
    var summary = document.getElementById("preview-summary");
    summary.innerHTML = "";
    var kpis = el("div", { "class": "kpis" });
    [["Rows before", rows.before], ["Rows after", rows.after], ["Rows dropped", rows.dropped],
     ["Columns added", (cols.added || []).length], ["Columns removed", (cols.removed || []).length], ["Columns changed", (cols.changed || []).length]]
      .forEach(function (k) { var d = el("div", { "class": "kpi" }); d.appendChild(el("strong", {}, String(k[1] === undefined ? "—" : k[1]))); d.appendChild(el("span", { "class": "small muted" }, k[0])); kpis.appendChild(d); });
    summary.appendChild(kpis);
    if (rows.sampled) summary.appendChild(el("p", { "class": "small muted" }, "Computed on a sample of " + rows.before + " of " + rows.total + " rows."));
    showStats(p.stats || {}, cols);
    var warnBox = document.getElementById("preview-warnings");
    warnBox.innerHTML = "";
    (p.warnings || []).forEach(function (w) { warnBox.appendChild(el("p", { "class": "alert warning", "data-code": w.code }, w.message)); });
    var table = document.getElementById("preview-table");
    table.innerHTML = "";
    var sample = p.sample || p.head || {};
    var header = sample.columns || [];
    var data = sample.rows || [];
    var changed = {};
    (sample.changed_cells || []).forEach(function (c) { changed[c.row + "|" + c.column] = true; });
    if (!header.length) return;
    var t = el("table", { "class": "table", "data-testid": "preview-rows" });
    var tr = el("tr");
    header.forEach(function (h) { tr.appendChild(el("th", {}, h)); });
    t.appendChild(el("thead")).appendChild(tr);
    var tb = el("tbody");
    data.forEach(function (row, ri) {
      var r = el("tr");
      header.forEach(function (h) {
        var v = row[h];
        var td = el("td", {}, v === null || v === undefined ? "∅" : String(v));
        if (changed[ri + "|" + h]) td.className = "changed";
        r.appendChild(td);
      });
      tb.appendChild(r);
    });
    t.appendChild(tb);
    table.appendChild(t);
  }

  var STATS = ["dtype", "missing", "mean", "std", "min", "max", "distinct"];

  function fmt(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number" && !Number.isInteger(v)) return Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : String(Math.round(v * 1000) / 1000);
    return String(v);
  }

  // Columns whose statistics changed: added, removed, retyped, or any stat moved.
  function changedStats(stats) {
    return Object.keys(stats).filter(function (c) {
      var s = stats[c];
      if (!s.before || !s.after) return true;
      return STATS.some(function (k) { return JSON.stringify(s.before[k]) !== JSON.stringify(s.after[k]); });
    });
  }

  function showStats(stats, cols) {
    var box = document.getElementById("preview-stats");
    box.innerHTML = "";
    var names = changedStats(stats);
    if (!names.length) { box.appendChild(el("p", { "class": "small muted" }, "No column statistics change.")); return; }
    var t = el("table", { "class": "table compact", "data-testid": "preview-stats" });
    var head = el("tr");
    head.appendChild(el("th", {}, "Column"));
    STATS.forEach(function (k) { head.appendChild(el("th", {}, k)); });
    t.appendChild(el("thead")).appendChild(head);
    var tb = el("tbody");
    names.forEach(function (c) {
      var s = stats[c];
      var state = !s.before ? "added" : (!s.after ? "removed" : "changed");
      var tr = el("tr", { "data-column": c, "data-state": state });
      tr.appendChild(el("th", {}, c + (state === "changed" ? "" : " (" + state + ")")));
      STATS.forEach(function (k) {
        var a = s.before ? s.before[k] : undefined, b = s.after ? s.after[k] : undefined;
        var same = s.before && s.after && JSON.stringify(a) === JSON.stringify(b);
        var td = el("td", { "data-stat": k }, same ? fmt(b) : (s.before ? fmt(a) : "") + (s.before && s.after ? " → " : "") + (s.after ? fmt(b) : ""));
        if (!same) td.className = "changed";
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    var caption = el("p", { "class": "small muted" }, "Column statistics, before → after (" + names.length + " of " + Object.keys(stats).length + " columns change):");
    box.appendChild(caption);
    box.appendChild(t);
  }

  function apply() {
    var status = document.getElementById("apply-status");
    var bar = document.getElementById("apply-progress");
    var confirm = document.getElementById("confirm-loss").checked;
    api("POST", "/api/v1/datasets/" + datasetId + "/recipes/apply", { steps: steps, version_id: versionId, confirm_data_loss: confirm }).then(function (r) {
      if (r.status !== 202) { status.textContent = (r.body.error && r.body.error.message) || "Apply failed."; status.className = "alert error"; return; }
      status.className = "muted small";
      bar.hidden = false;
      var cancel = document.getElementById("cancel-apply");
      cancel.hidden = false;
      cancel.disabled = false;
      cancel.onclick = function () {
        cancel.disabled = true;
        api("POST", "/api/v1/jobs/" + r.body.job_id + "/cancel").then(function (c) {
          if (c.status !== 202) { cancel.disabled = false; status.textContent = (c.body.error && c.body.error.message) || "Could not cancel."; }
          else status.textContent = "Cancelling…";
        });
      };
      document.getElementById("apply-recipe").disabled = true;
      poll(r.body.job_id, bar, status);
    });
  }

  function poll(jobId, bar, status) {
    api("GET", "/api/v1/jobs/" + jobId).then(function (r) {
      var job = r.body;
      bar.firstElementChild.style.width = Math.round((job.progress || 0) * 100) + "%";
      status.textContent = job.message || job.status;
      var done = job.status === "succeeded" || job.status === "failed" || job.status === "cancelled";
      if (done) {
        document.getElementById("cancel-apply").hidden = true;
        document.getElementById("apply-recipe").disabled = steps.length === 0;
      }
      if (job.status === "succeeded") {
        status.textContent = "New version created.";
        versionId = job.result.version_id;
        steps = [];
        renderSteps();
        loadLineage();
        window.location.href = "/stages/transform?dataset=" + datasetId;
      } else if (job.status === "cancelled") {
        status.textContent = job.message || "Cancelled; nothing was kept.";
        status.className = "alert warning";
        bar.hidden = true;
      } else if (job.status === "failed") {
        status.textContent = (job.error && job.error.message) || job.status;
        status.className = "alert error";
      } else {
        setTimeout(function () { poll(jobId, bar, status); }, 400);
      }
    });
  }

  function loadLineage() {
    api("GET", "/api/v1/versions/" + versionId + "/lineage").then(function (r) {
      if (r.status !== 200) return;
      var g = r.body;
      var pos = {};
      g.nodes.forEach(function (n, i) { pos[n.id] = { x: i, y: 0 }; });
      var depth = {};
      g.nodes.forEach(function (n) { depth[n.id] = 0; });
      g.edges.forEach(function (e) { depth[e.to] = (depth[e.from] || 0) + 1; });
      var byDepth = {};
      g.nodes.forEach(function (n) { var d = depth[n.id]; byDepth[d] = (byDepth[d] || 0) + 1; pos[n.id] = { x: d, y: byDepth[d] - 1 }; });
      var ex = [], ey = [];
      g.edges.forEach(function (e) { if (!pos[e.from]) return; ex.push(pos[e.from].x, pos[e.to].x, null); ey.push(pos[e.from].y, pos[e.to].y, null); });
      var traces = [{ x: ex, y: ey, mode: "lines", line: { color: "#9aa8c2", width: 2 }, hoverinfo: "none", type: "scatter" },
        { x: g.nodes.map(function (n) { return pos[n.id].x; }), y: g.nodes.map(function (n) { return pos[n.id].y; }),
          text: g.nodes.map(function (n) { return n.label; }), mode: "markers+text", textposition: "top center", type: "scatter",
          marker: { size: 26, symbol: g.nodes.map(function (n) { return n.type === "model" ? "diamond" : "circle"; }),
            color: g.nodes.map(function (n) { return n.type === "model" ? "#1f8a4c" : (n.is_current ? "#2f6fed" : "#c9d4ea"); }) },
          hovertext: g.nodes.map(function (n) { return n.type === "model" ? n.label + " — " + n.note : n.label + ": " + n.n_rows + " rows, " + n.n_columns + " cols — " + n.note; }), hoverinfo: "text" }];
      traces[1].customdata = g.nodes.map(function (n) { return n.id; });
      var graph = document.getElementById("lineage-graph");
      if (window.Plotly) {
        window.Plotly.newPlot(graph, traces, { showlegend: false, height: 220, margin: { t: 20, b: 20, l: 20, r: 20 },
          xaxis: { visible: false }, yaxis: { visible: false } }, { displaylogo: false, responsive: true });
        if (graph.removeAllListeners) graph.removeAllListeners("plotly_click");
        graph.on("plotly_click", function (ev) {
          var point = ev.points && ev.points[0];
          var node = point && g.nodes.find(function (n) { return n.id === point.customdata; });
          if (node) openNode(node);
        });
      }
      var tbody = document.querySelector("#lineage-table tbody");
      tbody.innerHTML = "";
      g.nodes.forEach(function (n) {
        var edge = g.edges.find(function (e) { return e.to === n.id; });
        var tr = el("tr", { "data-version": n.id, "data-type": n.type });
        tr.appendChild(el("td", {}, n.label + (n.is_current ? " (working)" : "")));
        tr.appendChild(el("td", {}, n.type === "model" ? "—" : String(n.n_rows)));
        tr.appendChild(el("td", {}, n.type === "model" ? "—" : String(n.n_columns)));
        var made = el("td", {}, edge ? edge.steps.join(" → ") : n.note);
        if (n.type !== "model") showImpact(made, n.id);
        tr.appendChild(made);
        var td = el("td");
        if (n.type === "model") {
          td.appendChild(el("a", { href: "/stages/evaluate?model=" + n.model_id }, "Evaluate"));
        } else if (!n.is_current) {
          var b = el("button", { type: "button", "class": "small" }, "Make working");
          b.addEventListener("click", function () { restore(n); });
          td.appendChild(b);
        }
        tr.appendChild(td);
        tbody.appendChild(tr);
      });
    });
  }

  // What the recipe that made a version did (its recipe_impact), under its steps; the
  // facts behind the numbers on hover. Versions list once per lineage load.
  var impacts = null;
  function showImpact(cell, id) {
    if (impacts === null) {
      impacts = api("GET", "/api/v1/datasets/" + datasetId + "/versions").then(function (r) {
        var byId = {};
        ((r.status === 200 && r.body.items) || []).forEach(function (v) { byId[v.id] = (v.source || {}).recipe_impact; });
        return byId;
      });
    }
    impacts.then(function (byId) {
      var impact = byId[id];
      if (!impact) return;
      var p = el("p", { "class": "small muted", "data-testid": "version-impact" }, impact.text);
      p.title = "Facts behind this text:\n" + impact.facts.map(function (f) { return f.name + " = " + f.value + " (" + f.source + ")"; }).join("\n");
      cell.appendChild(p);
    });
  }

  // Make a version the working one (nothing is deleted); the table and the graph share it.
  function restore(node) {
    var question = "Make " + node.label + " (" + node.n_rows + " rows, " + node.n_columns + " columns) the working version? Later versions are kept.";
    if (!window.confirm(question)) return;
    api("POST", "/api/v1/versions/" + node.id + "/restore").then(function (r) {
      if (r.status === 200) { window.location.reload(); return; }
      var status = document.getElementById("lineage-status");
      status.textContent = (r.body.error && r.body.error.message) || "Could not restore that version.";
      status.hidden = false;
    });
  }

  function openNode(node) {
    if (node.type === "model") { window.location.href = "/stages/evaluate?model=" + node.model_id; return; }
    if (!node.is_current) restore(node);
  }

  api("GET", "/api/v1/recipes/steps").then(function (r) {
    var palette = document.getElementById("step-palette");
    (r.body.items || []).forEach(function (s) {
      catalog[s.name] = s;
      palette.appendChild(el("option", { value: s.name }, s.title + " (" + s.category + ")"));
    });
    palette.addEventListener("change", function () {
      var s = catalog[palette.value];
      document.getElementById("step-help").textContent = s ? s.description : "";
    });
    renderSteps();
    if (steps.length) schedulePreview();
  });
  document.getElementById("add-step").addEventListener("click", function () {
    var name = document.getElementById("step-palette").value;
    if (!name) return;
    steps.push({ step: name });
    renderSteps();
    schedulePreview();
  });
  document.getElementById("apply-recipe").addEventListener("click", apply);
  document.getElementById("download-recipe").addEventListener("click", function () {
    var blob = new Blob([JSON.stringify({ steps: steps }, null, 2)], { type: "application/json" });
    var a = el("a", { href: URL.createObjectURL(blob), download: "recipe.json" });
    document.body.appendChild(a); a.click(); a.remove();
  });
  document.getElementById("load-recipe").addEventListener("change", function (ev) {
    var f = ev.target.files[0];
    if (!f) return;
    var issuesBox = document.getElementById("preview-issues");
    var isYaml = /\.ya?ml$/i.test(f.name);
    f.text().then(function (text) {
      // The server reads the file (JSON or YAML) and answers with the parsed recipe, so
      // YAML needs no parser here and both are checked the same way.
      return api("POST", "/api/v1/datasets/" + datasetId + "/recipes/validate", text, isYaml ? "application/yaml" : "application/json");
    }).then(function (r) {
      ev.target.value = "";
      if (r.status !== 200) {
        var err = r.body.error || {};
        issuesBox.textContent = "Could not load " + f.name + ": " + (err.message || "the file is not a recipe.");
        issuesBox.hidden = false;
        return;
      }
      issuesBox.hidden = true;
      steps = (r.body.recipe && r.body.recipe.steps) || [];
      renderSteps(r.body.issues);
      schedulePreview();
    });
  });
  window.addEventListener("load", loadLineage);
})();
