// Deploy stage: deploy a version, roll back (after a confirmation dialog) or switch the
// served version, the traffic sparkline, a try-it form generated from the input signature,
// batch scoring with progress, deployment keys and copy-paste snippets. Everything goes
// through the JSON API with the session cookie and the X-CSRF-Token header.
(function () {
  var call = window.narrate.call, el = window.narrate.el, withPlotly = window.narrate.withPlotly;

  function errorOf(body, fallback) {
    var err = body && body.error;
    if (!err) return { message: fallback, details: {} };
    if (typeof err === "string") return { message: err, details: {} };
    var message = err.message || fallback;
    if (err.hint) message += " " + err.hint;
    return { message: message, details: err.details || {} };
  }

  function showError(box, message) {
    box.textContent = message;
    box.hidden = false;
  }

  function fmt(v) {
    if (v === null || v === undefined || v === "" || isNaN(Number(v))) return String(v);
    return String(parseFloat(Number(v).toPrecision(6)));
  }

  function slug(text) {
    var s = String(text || "").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63);
    return s.replace(/-+$/, "") || "model";
  }

  // ---- deploy form -----------------------------------------------------------------
  var deployForm = document.getElementById("deploy-form");
  if (deployForm) {
    var nameInput = document.getElementById("deploy-name");
    var versionSelect = document.getElementById("deploy-version");
    var suggest = function () {
      if (nameInput.dataset.touched) return;
      var option = versionSelect.options[versionSelect.selectedIndex];
      if (option) nameInput.value = slug(option.dataset.modelName);
    };
    nameInput.addEventListener("input", function () { nameInput.dataset.touched = "1"; });
    versionSelect.addEventListener("change", suggest);
    suggest();
    deployForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var box = document.getElementById("deploy-error");
      var button = deployForm.querySelector("button[type=submit]");
      var name = nameInput.value.trim();
      box.hidden = true;
      button.disabled = true;
      call("POST", "/api/v1/deployments", { name: name, model_version_id: versionSelect.value }).then(function (r) {
        button.disabled = false;
        if (r.status !== 201) {
          showError(box, errorOf(r.body, "The deployment could not be created (HTTP " + r.status + ").").message);
          return;
        }
        window.location.href = "/stages/deploy?deployment=" + encodeURIComponent(r.body.name);
      });
    });
  }

  // ---- copy buttons ----------------------------------------------------------------
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("button[data-copy]") : null;
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    var text = source.textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
      try { if (document.execCommand("copy")) done(); } catch (e) { /* the text stays selected */ }
    }
  });

  function selectText(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  var app = document.getElementById("deploy-app");
  if (!app) return;
  var name = app.dataset.name;
  var canWrite = app.dataset.canWrite === "yes";
  var isRegression = app.dataset.task === "regression";
  var base = "/api/v1/deployments/" + encodeURIComponent(name);
  var signature = null;

  // ---- rollback and switching versions -------------------------------------------------
  var rollbackButton = document.getElementById("rollback-button");
  var dialog = document.getElementById("rollback-dialog");
  if (rollbackButton && dialog) {
    var rollbackError = document.getElementById("rollback-error");
    rollbackButton.addEventListener("click", function () {
      rollbackError.hidden = true;
      dialog.showModal();
      document.getElementById("rollback-reason").focus();
    });
    document.getElementById("rollback-cancel").addEventListener("click", function () { dialog.close(); });
    document.getElementById("rollback-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var confirmButton = dialog.querySelector("button[type=submit]");
      confirmButton.disabled = true;
      var reason = document.getElementById("rollback-reason").value.trim();
      call("POST", base + "/rollback", { reason: reason }).then(function (r) {
        confirmButton.disabled = false;
        if (r.status !== 200) {
          showError(rollbackError, errorOf(r.body, "The rollback failed (HTTP " + r.status + ").").message);
          return;
        }
        dialog.close();
        window.location.href = "/stages/deploy?deployment=" + encodeURIComponent(name);
      });
    });
  }

  var switchForm = document.getElementById("switch-form");
  if (switchForm) {
    switchForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var box = document.getElementById("revision-error");
      box.hidden = true;
      var select = document.getElementById("switch-version");
      var body = { model_version_id: select.value, reason: document.getElementById("switch-reason").value.trim() };
      call("PATCH", base, body).then(function (r) {
        if (r.status !== 200) {
          showError(box, errorOf(r.body, "The switch failed (HTTP " + r.status + ").").message);
          return;
        }
        window.location.href = "/stages/deploy?deployment=" + encodeURIComponent(name);
      });
    });
  }

  // ---- traffic sparkline ---------------------------------------------------------------
  function ms(v) { return v === null || v === undefined ? "—" : String(parseFloat(Number(v).toPrecision(3))) + " ms"; }
  function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }

  function showArms(stats) {
    var box = document.getElementById("stats-arms");
    box.textContent = "";
    var arms = stats.arms || {};
    var names = Object.keys(arms);
    if (names.length < 2 && stats.agreement_rate === null) return;
    var table = el("table", { "class": "table", "data-testid": "stats-arms-table" });
    var head = el("tr");
    [["Arm", ""], ["Requests", "num"], ["Median latency", "num"], ["95th percentile", "num"], ["Flagged rows", "num"],
      [isRegression ? "Mean prediction" : "Most frequent class share", "num"]].forEach(function (h) {
      head.appendChild(el("th", h[1] ? { "class": h[1] } : {}, h[0]));
    });
    table.appendChild(el("thead")).appendChild(head);
    var tbody = el("tbody");
    names.forEach(function (arm) {
      var a = arms[arm];
      var tr = el("tr", { "data-arm": arm });
      var words = { primary: "primary (served)", canary: "canary", shadow: "shadow (logged only)", batch: "batch scoring" };
      tr.appendChild(el("td", {}, words[arm] || arm));
      tr.appendChild(el("td", { "class": "num" }, String(a.n)));
      tr.appendChild(el("td", { "class": "num" }, ms(a.latency_p50_ms)));
      tr.appendChild(el("td", { "class": "num" }, ms(a.latency_p95_ms)));
      tr.appendChild(el("td", { "class": "num" }, pct(a.flagged_share)));
      tr.appendChild(el("td", { "class": "num" }, a.prediction_mean === null || a.prediction_mean === undefined ? "—" : isRegression ? fmt(a.prediction_mean) : pct(a.prediction_mean)));
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    var challenger = names.indexOf("shadow") >= 0 || names.indexOf("canary") >= 0;
    box.appendChild(el("h3", {}, challenger ? "Challenger compared with the primary" : "Traffic by source"));
    box.appendChild(table);
    if (stats.agreement_rate !== null && stats.agreement_rate !== undefined) {
      box.appendChild(el("p", { "class": "small", "data-testid": "agreement" },
        "The shadow version gave the same answer as the primary on " + pct(stats.agreement_rate) +
        " of the same requests" + (isRegression ? " (within 5% of each other)." : ".")));
    }
  }

  // At least the last hour, so that a few minutes of traffic read as a sparkline and not
  // as one bar across the chart. The minutes are UTC wall-clock times without an offset.
  function timeRange(minutes) {
    var utc = function (text) { return Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(text) ? text : text + "Z"); };
    var first = utc(minutes[0]);
    var last = utc(minutes[minutes.length - 1]);
    var wall = function (t) { return new Date(t).toISOString().slice(0, 19); };
    return [wall(Math.min(first - 60000, last - 3600000)), wall(last + 60000)];
  }

  function showStats(stats) {
    var summary = document.getElementById("stats-summary");
    var series = stats.series || [];
    var primary = (stats.arms || {}).primary || {};
    if (!stats.total) {
      summary.textContent = "No predictions in the last " + fmt(stats.window_hours) + " hours yet. Try one below.";
    } else {
      summary.textContent = stats.total.toLocaleString() + " predictions in the last " + fmt(stats.window_hours) +
        " hours · median latency " + ms(primary.latency_p50_ms) + " (95th percentile " + ms(primary.latency_p95_ms) +
        ") · " + pct(primary.flagged_share) + " of rows flagged.";
    }
    showArms(stats);
    var target = document.getElementById("stats-chart");
    if (!series.length) { target.hidden = true; return; }
    target.hidden = false;
    withPlotly(function () {
      var minutes = series.map(function (p) { return p.minute; });
      var data = [
        { type: "bar", name: "predictions per minute", x: minutes, y: series.map(function (p) { return p.n; }), width: 45000, marker: { color: "#2f6fed" } },
        { type: "scatter", mode: "lines+markers", name: "median latency (ms)", x: minutes, y: series.map(function (p) { return p.latency_p50_ms; }), yaxis: "y2", line: { color: "#b7791f" } },
      ];
      var layout = {
        height: 180, margin: { t: 10, r: 50, b: 30, l: 40 }, showlegend: true,
        legend: { orientation: "h", y: 1.15, font: { size: 11 } },
        xaxis: { type: "date", tickformat: "%H:%M", tickfont: { size: 10 }, range: timeRange(minutes) },
        yaxis: { title: { text: "rows" }, rangemode: "tozero", tickfont: { size: 10 } },
        yaxis2: { title: { text: "ms" }, overlaying: "y", side: "right", rangemode: "tozero", tickfont: { size: 10 } },
      };
      window.Plotly.react(target, data, layout, { displaylogo: false, responsive: true, displayModeBar: false });
      target.dataset.rendered = "1";
    });
  }

  function loadStats() {
    call("GET", base + "/stats?hours=24").then(function (r) {
      if (r.status !== 200) {
        document.getElementById("stats-summary").textContent = errorOf(r.body, "Traffic could not be read (HTTP " + r.status + ").").message;
        return;
      }
      showStats(r.body);
    });
  }

  // ---- try-it form from the signature ------------------------------------------------------
  var fieldsBox = document.getElementById("try-fields");
  var tryForm = document.getElementById("try-form");
  var tryError = document.getElementById("try-error");
  var tryResult = document.getElementById("try-result");

  function rangeText(col) {
    if (col.min === undefined || col.min === null) return "";
    if (col.type === "datetime") return String(col.min).replace("T", " ") + " – " + String(col.max).replace("T", " ");
    return fmt(col.min) + "–" + fmt(col.max);
  }

  function hintFor(col) {
    var words = { number: "number", integer: "whole number", boolean: "true or false", category: "category", datetime: "date (ISO 8601)", text: "text" };
    var hint = words[col.type] || col.type;
    var range = rangeText(col);
    if (range) hint += ", " + range + " in training";
    if (col.categories && col.type === "category") hint += ", " + col.categories.length + (col.categories_truncated ? "+" : "") + " values seen";
    return hint;
  }

  function optionsSelect(id, values, current) {
    var select = el("select", { id: id });
    select.appendChild(el("option", { value: "" }, "(empty)"));
    var found = false;
    values.forEach(function (v, i) {
      var option = el("option", { value: String(i) }, String(v));
      if (current !== null && current !== undefined && String(v) === String(current)) { option.selected = true; found = true; }
      select.appendChild(option);
    });
    if (!found && (current === null || current === undefined)) select.value = "";
    return select;
  }

  function fieldFor(col, index, value) {
    var id = "try-field-" + index;
    var label = el("label", { "for": id, "class": "try-field", "data-column": col.name });
    var title = el("span", { "class": "try-name" }, col.name);
    label.appendChild(title);
    var input;
    if (col.type === "number" || col.type === "integer") {
      input = el("input", { id: id, type: "number", step: col.type === "integer" ? "1" : "any", inputmode: "decimal" });
      if (value !== null && value !== undefined) input.value = String(value);
    } else if ((col.type === "category" || col.type === "boolean") && col.categories && !col.categories_truncated) {
      var values = col.type === "boolean" ? [true, false] : col.categories.slice();
      if (value !== null && value !== undefined && values.map(String).indexOf(String(value)) < 0) values.push(value);
      input = optionsSelect(id, values, value);
      input.dataset.values = JSON.stringify(values);
    } else {
      input = el("input", { id: id, type: "text", autocomplete: "off" });
      if (col.type === "datetime") input.setAttribute("placeholder", "e.g. 2024-05-31 or 2024-05-31T14:30:00");
      if (col.categories && col.categories.length) {
        var list = el("datalist", { id: id + "-list" });
        col.categories.slice(0, 200).forEach(function (c) { list.appendChild(el("option", { value: String(c) })); });
        label.appendChild(list);
        input.setAttribute("list", id + "-list");
      }
      if (value !== null && value !== undefined) input.value = String(value);
    }
    input.dataset.column = col.name;
    input.dataset.type = col.type;
    input.setAttribute("aria-describedby", id + "-hint");
    label.appendChild(input);
    label.appendChild(el("span", { id: id + "-hint", "class": "small muted try-hint" }, hintFor(col)));
    return label;
  }

  function readRow() {
    var row = {};
    fieldsBox.querySelectorAll("[data-column]:not(label)").forEach(function (input) {
      var column = input.dataset.column;
      var raw = input.value;
      if (input.dataset.values !== undefined) {
        row[column] = raw === "" ? null : JSON.parse(input.dataset.values)[Number(raw)];
      } else if (raw === "" || raw === undefined) {
        row[column] = null;
      } else if (input.dataset.type === "number" || input.dataset.type === "integer") {
        // Text that is not a number is sent as typed, so the answer can say what is wrong.
        row[column] = isNaN(Number(raw)) ? raw : Number(raw);
      } else {
        row[column] = raw;
      }
    });
    return row;
  }

  function buildForm(sig) {
    fieldsBox.textContent = "";
    var example = sig.example_row || {};
    (sig.columns || []).forEach(function (col, i) { fieldsBox.appendChild(fieldFor(col, i, example[col.name])); });
    if (!(sig.columns || []).length) fieldsBox.appendChild(el("p", { "class": "muted small" }, "This model takes no input columns."));
    tryForm.querySelector("button[type=submit]").disabled = false;
  }

  function column(name) {
    return ((signature || {}).columns || []).filter(function (c) { return c.name === name; })[0] || { name: name };
  }

  function flagText(flag, row) {
    var cut = flag.indexOf(":");
    var kind = flag.slice(0, cut);
    var col = column(flag.slice(cut + 1));
    var q = "'" + col.name + "'";
    if (kind === "missing") return q + " is empty: the model fills it in the way it learned in training, so this prediction is less certain.";
    if (kind === "out_of_range") {
      var range = rangeText(col);
      return q + " is " + (row[col.name] === undefined ? "" : fmt(row[col.name]) + ", ") + "outside the range seen in training" + (range ? " (" + range + ")" : "") + ": the model has to extrapolate.";
    }
    if (kind === "unseen_category") {
      var seen = (col.categories || []).slice(0, 5).map(function (c) { return "'" + c + "'"; }).join(", ");
      return q + " is '" + row[col.name] + "', a value training never saw" + (seen ? " (it saw " + seen + (col.categories.length > 5 ? " …" : "") + ")" : "") + ": the model treats it as unknown.";
    }
    return flag;
  }

  function probabilityTable(probabilities, chosen) {
    var classes = Object.keys(probabilities).sort(function (a, b) { return probabilities[b] - probabilities[a]; });
    var table = el("table", { "class": "table probabilities", "data-testid": "try-probabilities" });
    var head = el("tr");
    head.appendChild(el("th", {}, "Class"));
    head.appendChild(el("th", {}, "Probability"));
    head.appendChild(el("th", { "class": "num" }, ""));
    table.appendChild(el("thead")).appendChild(head);
    var tbody = el("tbody");
    classes.forEach(function (c) {
      var p = probabilities[c];
      var tr = el("tr", { "data-class": c });
      if (String(c) === String(chosen)) tr.className = "chosen";
      tr.appendChild(el("td", {}, c));
      var barCell = el("td", { "class": "bar-cell" });
      var bar = el("div", { "class": "bar", role: "presentation" });
      bar.style.width = Math.max(0, Math.min(100, p * 100)).toFixed(1) + "%";
      barCell.appendChild(bar);
      tr.appendChild(barCell);
      tr.appendChild(el("td", { "class": "num" }, (p * 100).toFixed(1) + "%"));
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    return table;
  }

  function showPrediction(body, row) {
    tryResult.textContent = "";
    var p = (body.predictions || [])[0] || {};
    var line = el("p", { "class": "prediction" });
    line.appendChild(document.createTextNode("Prediction: "));
    line.appendChild(el("strong", { "data-testid": "try-prediction" }, isRegression ? fmt(p.prediction) : String(p.prediction)));
    if (p.interval && p.interval.low !== null && p.interval.low !== undefined) {
      line.appendChild(document.createTextNode(" · " + Math.round((p.interval.level || 0.9) * 100) + "% of outcomes like this fall between " + fmt(p.interval.low) + " and " + fmt(p.interval.high)));
    }
    tryResult.appendChild(line);
    if (p.probabilities) tryResult.appendChild(probabilityTable(p.probabilities, p.prediction));
    var flags = p.flags || [];
    if (flags.length) {
      var list = el("ul", { "class": "flags", "data-testid": "try-flags" });
      flags.forEach(function (f) { list.appendChild(el("li", { "class": "alert warning small", "data-flag": f }, flagText(f, row))); });
      tryResult.appendChild(el("p", { "class": "small" }, "Accepted, but the model saw nothing like this in training:"));
      tryResult.appendChild(list);
    }
    var meta = "Answered by revision " + body.revision + (body.arm === "canary" ? " (the canary version)" : "") +
      " with the " + (body.engine === "serving" ? "serving copy" : "joblib pipeline") + " · prediction id " + (p.prediction_id || "—");
    tryResult.appendChild(el("p", { "class": "small muted", "data-testid": "try-meta" }, meta));
    if (body.engine_note) tryResult.appendChild(el("p", { "class": "alert warning small", "data-testid": "try-engine-note" }, body.engine_note));
  }

  function inputOf(columnName) {
    var found = null;
    fieldsBox.querySelectorAll("[data-column]:not(label)").forEach(function (input) {
      if (input.dataset.column === columnName) found = input;
    });
    return found;
  }

  function plainError(err) {
    var col = err.details && err.details.column;
    if (!col) return err.message;
    // "rows[0], column 'Age': ..." → the column is already named in front.
    var text = err.message.replace(/^rows\[\d+\],\s*column '[^']*':\s*/, "").replace(/^rows\[\d+\] /, "")
      .replace(/,? or null\.$/, ", or leave the field empty.");
    return "The value for '" + col + "' can't be used: " + text;
  }

  tryForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    fieldsBox.querySelectorAll("[aria-invalid]").forEach(function (i) { i.removeAttribute("aria-invalid"); });
    tryError.hidden = true;
    var button = tryForm.querySelector("button[type=submit]");
    button.disabled = true;
    var row = readRow();
    call("POST", base + "/predict", { rows: [row] }).then(function (r) {
      button.disabled = false;
      if (r.status !== 200) {
        tryResult.textContent = "";
        var err = errorOf(r.body, "The prediction failed (HTTP " + r.status + ").");
        showError(tryError, plainError(err));
        var bad = err.details.column ? inputOf(err.details.column) : null;
        if (bad) { bad.setAttribute("aria-invalid", "true"); bad.focus(); }
        return;
      }
      showPrediction(r.body, row);
      loadStats();
    });
  });

  // ---- snippets --------------------------------------------------------------------------
  function py(value, indent) {
    var pad = new Array(indent + 1).join("    ");
    if (value === null || value === undefined) return "None";
    if (value === true) return "True";
    if (value === false) return "False";
    if (typeof value === "number" || typeof value === "string") return JSON.stringify(value);
    var keys = Object.keys(value);
    if (!keys.length) return "{}";
    return "{\n" + keys.map(function (k) {
      return pad + "    " + JSON.stringify(k) + ": " + py(value[k], indent + 1) + ",";
    }).join("\n") + "\n" + pad + "}";
  }

  function showSnippets(row) {
    var url = window.location.origin + base + "/predict";
    var body = JSON.stringify({ rows: [row] }).replace(/'/g, "'\\''");
    document.getElementById("snippet-curl").textContent =
      "curl -X POST '" + url + "' \\\n" +
      "  -H \"Authorization: Bearer $NARRATE_KEY\" \\\n" +
      "  -H 'Content-Type: application/json' \\\n" +
      "  -d '" + body + "'";
    document.getElementById("snippet-python").textContent =
      "import os\n\nimport httpx\n\n" +
      "row = " + py(row, 0) + "\n\n" +
      "response = httpx.post(\n" +
      "    " + JSON.stringify(url) + ",\n" +
      "    headers={\"Authorization\": f\"Bearer {os.environ['NARRATE_KEY']}\"},\n" +
      "    json={\"rows\": [row]},\n" +
      "    timeout=30,\n" +
      ")\n" +
      "response.raise_for_status()\n" +
      "answer = response.json()[\"predictions\"][0]\n" +
      "print(answer[\"prediction\"]" + (isRegression ? "" : ", answer[\"probabilities\"]") + ", answer[\"flags\"])\n";
  }

  call("GET", base + "/signature").then(function (r) {
    if (r.status !== 200) {
      fieldsBox.textContent = "";
      showError(tryError, errorOf(r.body, "The input signature could not be read (HTTP " + r.status + ").").message);
      return;
    }
    signature = r.body.signature || {};
    buildForm(signature);
    showSnippets(signature.example_row || {});
  });

  // ---- batch -------------------------------------------------------------------------------
  var batchForm = document.getElementById("batch-form");
  var batchRun = document.getElementById("batch-run");
  var batchBar = document.getElementById("batch-progress");
  var batchStatus = document.getElementById("batch-status");
  var batchError = document.getElementById("batch-error");
  var batchCancel = document.getElementById("batch-cancel");
  var batchJob = null;

  function setProgress(fraction) {
    var percent = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100);
    batchBar.firstElementChild.style.width = percent + "%";
    batchBar.setAttribute("aria-valuenow", String(percent));
  }

  function followBatch(job) {
    call("GET", job.status_url).then(function (r) {
      if (job !== batchJob) return;  // a newer file was sent meanwhile
      if (r.status !== 200) {
        showError(batchError, errorOf(r.body, "The job's status could not be read (HTTP " + r.status + ").").message);
        return;
      }
      var status = r.body;
      setProgress(status.progress);
      batchStatus.textContent = status.message || status.status;
      if (status.status === "succeeded") {
        var result = status.result || {};
        batchStatus.textContent = "Scored " + (result.rows || 0).toLocaleString() + " rows" +
          (result.seconds !== undefined ? " in " + fmt(result.seconds) + " s" : "") +
          (result.flagged_rows ? " (" + result.flagged_rows.toLocaleString() + " flagged)" : "") +
          ". The output is kept until " + String(result.expires_at || "").slice(0, 16).replace("T", " ") + ".";
        ["parquet", "csv"].forEach(function (format) {
          var link = document.getElementById("batch-" + format);
          link.href = job.output_url + "?format=" + format;
          link.hidden = false;
        });
        batchCancel.hidden = true;
        batchForm.querySelector("button[type=submit]").disabled = false;
      } else if (status.status === "failed" || status.status === "cancelled") {
        batchCancel.hidden = true;
        batchForm.querySelector("button[type=submit]").disabled = false;
        batchStatus.textContent = "";
        showError(batchError, status.status === "cancelled" ? "Cancelled: nothing was kept." :
          errorOf({ error: status.error }, "The scoring failed.").message);
      } else {
        setTimeout(function () { followBatch(job); }, 500);
      }
    });
  }

  batchForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = document.getElementById("batch-file").files[0];
    if (!file) return;
    var button = batchForm.querySelector("button[type=submit]");
    button.disabled = true;
    batchError.hidden = true;
    ["parquet", "csv"].forEach(function (format) { document.getElementById("batch-" + format).hidden = true; });
    batchRun.hidden = false;
    batchCancel.hidden = false;
    batchCancel.disabled = false;
    setProgress(0);
    batchStatus.textContent = "Uploading " + file.name + "…";
    var form = new FormData();
    form.append("file", file, file.name);
    call("POST", base + "/batch", form).then(function (r) {
      if (r.status !== 202) {
        button.disabled = false;
        batchRun.hidden = true;
        showError(batchError, errorOf(r.body, "The file could not be scored (HTTP " + r.status + ").").message);
        return;
      }
      batchJob = r.body;
      // The output lives beside the status (…/batch/{job_id}/output) when the answer
      // does not name it.
      batchJob.output_url = batchJob.output_url || batchJob.status_url + "/output";
      batchStatus.textContent = "Queued…";
      followBatch(batchJob);
    });
  });

  batchCancel.addEventListener("click", function () {
    if (!batchJob) return;
    batchCancel.disabled = true;
    batchStatus.textContent = "Cancelling…";
    call("POST", batchJob.status_url + "/cancel").then(function (r) {
      if (r.status !== 202) {
        batchCancel.disabled = false;
        showError(batchError, errorOf(r.body, "The job could not be cancelled (HTTP " + r.status + ").").message);
      }
    });
  });

  // ---- keys --------------------------------------------------------------------------------
  var keyRows = document.getElementById("key-rows");
  var keyError = document.getElementById("key-error");

  function when(iso) { return iso ? String(iso).slice(0, 16).replace("T", " ") : ""; }

  function keyRow(k) {
    var tr = el("tr", { "data-key": k.key_id });
    tr.appendChild(el("td", {}, k.name));
    tr.appendChild(el("td")).appendChild(el("code", {}, k.prefix + "…"));
    tr.appendChild(el("td", { "class": "small" }, when(k.created_at)));
    tr.appendChild(el("td", { "class": "small" }, k.last_used_at ? when(k.last_used_at) : "never"));
    tr.appendChild(el("td", { "class": "small", "data-testid": "key-revoked" }, k.revoked_at ? when(k.revoked_at) : "—"));
    var cell = el("td");
    if (canWrite && !k.revoked_at) cell.appendChild(el("button", { type: "button", "class": "danger small", "data-revoke": k.key_id, "data-key-name": k.name }, "Revoke"));
    tr.appendChild(cell);
    return tr;
  }

  var keyForm = document.getElementById("key-form");
  if (keyForm) {
    keyForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      keyError.hidden = true;
      var input = document.getElementById("key-name");
      call("POST", base + "/keys", { name: input.value.trim() }).then(function (r) {
        if (r.status !== 201) {
          showError(keyError, errorOf(r.body, "The key could not be created (HTTP " + r.status + ").").message);
          return;
        }
        document.getElementById("key-secret").textContent = r.body.key;
        document.getElementById("key-new").hidden = false;
        keyRows.insertBefore(keyRow(r.body), keyRows.firstChild);
        document.querySelector("[data-testid=key-list]").hidden = false;
        document.getElementById("key-empty").hidden = true;
        input.value = "";
      });
    });
  }

  keyRows.addEventListener("click", function (ev) {
    var button = ev.target.closest ? ev.target.closest("button[data-revoke]") : null;
    if (!button) return;
    if (!window.confirm("Revoke the key '" + button.dataset.keyName + "'? Applications using it stop working at once.")) return;
    button.disabled = true;
    call("DELETE", base + "/keys/" + encodeURIComponent(button.dataset.revoke)).then(function (r) {
      if (r.status !== 204) {
        button.disabled = false;
        showError(keyError, errorOf(r.body, "The key could not be revoked (HTTP " + r.status + ").").message);
        return;
      }
      var tr = button.closest("tr");
      tr.querySelector("[data-testid=key-revoked]").textContent = when(new Date().toISOString());
      button.remove();
    });
  });

  loadStats();
})();
