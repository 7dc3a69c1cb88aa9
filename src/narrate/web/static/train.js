// Train stage: start an AutoML job from the form, follow its progress and live leaderboard,
// cancel it, and link to the evaluation when it is done. ?model=ID keeps following a run.
(function () {
  var app = document.getElementById("train-app");
  if (!app) return;
  var csrf = document.body.dataset.csrf || "";
  var options = JSON.parse(document.getElementById("train-options").textContent);
  var errorBox = document.getElementById("train-error");
  var pollTimer = null;
  var current = null; // {modelId, jobId}
  var TERMINAL = { succeeded: 1, failed: 1, cancelled: 1 };

  function api(method, url, body) {
    return fetch(url, {
      method: method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
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

  function fmt(v, digits) {
    if (v === null || v === undefined || isNaN(v)) return "—";
    return String(parseFloat(Number(v).toPrecision(digits || 4)));
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function errorMessage(err, fallback) {
    if (!err) return fallback;
    if (typeof err === "string") return err;
    return readable(err.message || (err.error && err.error.message)) || fallback;
  }

  // Invalid training options come back with pydantic's wording; keep the API's sentences
  // but drop its "[type=..., input_value=...]" dumps and documentation links.
  function readable(message) {
    if (!message) return message;
    return message.split("\n")
      .filter(function (line) { return line.trim().indexOf("For further information") !== 0; })
      .map(function (line) { return line.replace(/\s*\[type=.*$/, "").replace(/^\s*Value error, /, ""); })
      .join("\n");
  }

  // ---- the form -------------------------------------------------------------------
  var datasetSelect = document.getElementById("train-dataset");
  if (datasetSelect) {
    datasetSelect.addEventListener("change", function () {
      if (datasetSelect.value) window.location.href = "/stages/train?dataset=" + encodeURIComponent(datasetSelect.value);
    });
  }

  var taskSelect = document.getElementById("train-task");
  var metricSelect = document.getElementById("train-metric");
  if (taskSelect && metricSelect) {
    taskSelect.addEventListener("change", function () {
      var task = taskSelect.value;
      metricSelect.querySelectorAll("optgroup").forEach(function (g) {
        var shown = !task || g.dataset.task === task;
        g.hidden = !shown;
        g.disabled = !shown;
      });
      var chosen = metricSelect.selectedOptions[0];
      if (chosen && chosen.parentElement.tagName === "OPTGROUP" && chosen.parentElement.disabled) metricSelect.value = "";
    });
  }

  var objectiveSelect = document.getElementById("train-threshold-objective");
  function showThresholdInputs() {
    if (!objectiveSelect) return;
    var objective = objectiveSelect.value;
    document.getElementById("train-threshold-cost").hidden = objective !== "cost";
    document.getElementById("train-threshold-target").hidden = objective !== "precision" && objective !== "recall";
  }
  if (objectiveSelect) {
    objectiveSelect.addEventListener("change", showThresholdInputs);
    showThresholdInputs();
  }

  function numberField(id) {
    var input = document.getElementById(id);
    return input && input.value !== "" ? Number(input.value) : undefined;
  }

  function collect() {
    var body = { dataset_id: app.dataset.dataset };
    var target = document.getElementById("train-target").value;
    if (target) body.target = target;
    var budget = numberField("train-budget");
    if (budget !== undefined) body.time_budget_s = budget;
    var name = document.getElementById("train-name").value.trim();
    if (name) body.name = name;
    if (taskSelect.value) body.task = taskSelect.value;
    if (metricSelect.value) body.metric = metricSelect.value;
    var maxTrials = numberField("train-max-trials");
    if (maxTrials !== undefined) body.max_trials = maxTrials;
    var families = Array.from(document.querySelectorAll("#train-families input:checked")).map(function (i) { return i.value; });
    if (families.length !== options.families.length) body.families = families;
    var imbalance = document.getElementById("train-imbalance").value;
    if (imbalance && imbalance !== "auto") body.imbalance = imbalance;
    var sensitive = Array.from(document.getElementById("train-sensitive").selectedOptions).map(function (o) { return o.value; });
    if (sensitive.length) body.sensitive_columns = sensitive;
    if (!document.getElementById("train-ensembles").checked) body.ensembles = false;
    var cv = document.getElementById("train-cv").value;
    if (cv && cv !== "auto") body.cv = cv;
    var groupColumn = document.getElementById("train-group-column").value;
    if (groupColumn) body.group_column = groupColumn;
    var timeColumn = document.getElementById("train-time-column").value;
    if (timeColumn) body.time_column = timeColumn;
    var seed = numberField("train-seed");
    if (seed !== undefined) body.seed = seed;
    var threshold = collectThreshold();
    if (threshold) body.threshold = threshold;
    return body;
  }

  // The API checks the combination (a cost matrix for "cost", a target value for
  // "precision"/"recall") and its message is shown as is; empty inputs are sent as null.
  function collectThreshold() {
    var objective = objectiveSelect.value;
    if (!objective || objective === "f1") return null;
    var out = { objective: objective };
    if (objective === "cost") {
      var cell = function (id) { var v = numberField(id); return v === undefined ? null : v; };
      out.cost_matrix = [[cell("cost-tn"), cell("cost-fp")], [cell("cost-fn"), cell("cost-tp")]];
    } else if (objective === "precision" || objective === "recall") {
      var value = numberField("train-threshold-value");
      if (value !== undefined) out.target_value = value;
    }
    return out;
  }

  var form = document.getElementById("train-form");
  if (form && app.dataset.dataset) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = collect();
      if (body.families && !body.families.length) { showError("Tick at least one model family under Advanced."); return; }
      var button = document.getElementById("train-start");
      button.disabled = true;
      showError("");
      api("POST", "/api/v1/models", body).then(function (r) {
        button.disabled = false;
        if (r.status !== 202) {
          showError(errorMessage(r.body.error, "Training could not start (HTTP " + r.status + ")."));
          return;
        }
        var url = new URL(window.location.href);
        url.searchParams.set("model", r.body.model_id);
        window.history.replaceState(null, "", url.toString());
        startFollowing(r.body.model_id, { task: r.body.task, target: body.target });
      }).catch(function () {
        button.disabled = false;
        showError("The server could not be reached. Check your connection and try again.");
      });
    });
  }

  // ---- the run --------------------------------------------------------------------
  var TASK_WORDS = { binary: "binary classification", multiclass: "multiclass classification", regression: "regression" };

  function startFollowing(modelId, hint) {
    current = { modelId: modelId, jobId: null };
    document.getElementById("train-run").hidden = false;
    document.getElementById("run-evaluate").hidden = true;
    document.getElementById("run-cancel").hidden = false;
    document.getElementById("run-cancel").disabled = false;
    document.querySelector("#leaderboard tbody").innerHTML = "";
    if (hint && hint.task) showProblem("Detected problem: " + (TASK_WORDS[hint.task] || hint.task) + (hint.target ? " on '" + hint.target + "'." : "."));
    clearTimeout(pollTimer);
    poll();
  }

  function showProblem(text) {
    var p = document.getElementById("run-problem");
    p.textContent = text;
    p.hidden = !text;
  }

  function poll() {
    if (!current) return;
    api("GET", "/api/v1/models/" + current.modelId).then(function (r) {
      if (r.status !== 200) { showError(errorMessage(r.body.error, "Could not read the training status.")); return; }
      render(r.body);
      var t = r.body.training;
      if (t && !TERMINAL[t.status]) pollTimer = setTimeout(poll, 1000);
      else finish(r.body);
    }).catch(function () { pollTimer = setTimeout(poll, 2000); });
  }

  function render(model) {
    var t = model.training || { status: model.status, progress: 1, leaderboard: [] };
    current.jobId = t.job_id;
    document.getElementById("run-name").textContent = model.name + " · " + (TASK_WORDS[model.task] || model.task);
    var pct = Math.round((t.progress || 0) * 100);
    var bar = document.getElementById("run-progress");
    bar.firstElementChild.style.width = pct + "%";
    bar.setAttribute("aria-valuenow", String(pct));
    document.getElementById("run-message").textContent = t.message || t.status;
    if (t.message && t.message.indexOf("Problem detected:") === 0) showProblem(t.message);
    document.getElementById("run-status").textContent = t.status + " · " + pct + "%";
    document.getElementById("run-time-left").textContent = t.time_left_s === null || t.time_left_s === undefined ? "—" : Math.max(0, Math.round(t.time_left_s)) + " s";
    document.getElementById("run-trials").textContent = String(t.trials_done || 0);
    document.getElementById("run-best").textContent = fmt(t.best_score);
    if (model.metric) document.getElementById("run-best-label").textContent = "best CV " + model.metric;
    renderLeaderboard(t.leaderboard || []);
  }

  function renderLeaderboard(rows) {
    var tbody = document.querySelector("#leaderboard tbody");
    tbody.innerHTML = "";
    rows.forEach(function (row, i) {
      var tr = el("tr", { "data-family": row.family });
      if (i === 0) tr.className = "best";
      tr.appendChild(el("td", {}, String(row.rank || i + 1)));
      tr.appendChild(el("td", {}, String(row.family || "").replace(/_/g, " ")));
      tr.appendChild(el("td", {}, fmt(row.cv_score_mean)));
      tr.appendChild(el("td", {}, fmt(row.cv_score_std, 2)));
      tr.appendChild(el("td", {}, String(row.n_trials === undefined ? "—" : row.n_trials)));
      tr.appendChild(el("td", {}, row.fit_time_s === undefined || row.fit_time_s === null ? "—" : row.fit_time_s.toFixed(1) + " s"));
      tbody.appendChild(tr);
    });
    document.getElementById("leaderboard-empty").hidden = rows.length > 0;
  }

  function finish(model) {
    var t = model.training || {};
    document.getElementById("run-cancel").hidden = true;
    var version = (model.versions || [])[model.versions.length - 1];
    if (version && version.details && version.details.problem && version.details.problem.reasoning) {
      showProblem("Detected problem: " + version.details.problem.reasoning);
    }
    if (!(t.leaderboard && t.leaderboard.length) && version) renderLeaderboard(version.leaderboard || []);
    if (t.status === "failed") {
      showError(errorMessage(t.error, "Training failed."));
    } else if (t.status === "cancelled" && !model.current_version_id) {
      showError("Training was cancelled before any model finished.");
    }
    if (model.current_version_id) {
      var link = document.getElementById("run-evaluate");
      link.href = "/stages/evaluate?model=" + encodeURIComponent(model.id);
      link.hidden = false;
    }
  }

  document.getElementById("run-cancel").addEventListener("click", function () {
    if (!current || !current.jobId) return;
    var button = document.getElementById("run-cancel");
    button.disabled = true;
    document.getElementById("run-message").textContent = "Cancelling: the best model so far will be kept…";
    api("POST", "/api/v1/jobs/" + current.jobId + "/cancel").then(function (r) {
      if (r.status !== 202) { button.disabled = false; showError(errorMessage(r.body.error, "Could not cancel the run.")); }
    });
  });

  if (app.dataset.model) startFollowing(app.dataset.model, null);
})();
