// Evaluate stage: switch model/version, evaluate on another dataset version, and refit on
// the latest data (a job whose progress is followed until the new version is ready).
(function () {
  var csrf = document.body.dataset.csrf || "";

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

  function fmt(v) {
    if (v === null || v === undefined || isNaN(v)) return "—";
    return String(parseFloat(Number(v).toPrecision(4)));
  }

  function errorMessage(body, fallback) {
    var err = body && body.error;
    if (!err) return fallback;
    return typeof err === "string" ? err : err.message || fallback;
  }

  var modelSelect = document.getElementById("evaluate-model");
  if (modelSelect) {
    modelSelect.addEventListener("change", function () {
      if (modelSelect.value) window.location.href = "/stages/evaluate?model=" + encodeURIComponent(modelSelect.value);
    });
  }
  var versionSelect = document.getElementById("evaluate-version");
  if (versionSelect) {
    versionSelect.addEventListener("change", function () {
      window.location.href = "/stages/evaluate?model=" + encodeURIComponent(versionSelect.dataset.model) +
        "&version=" + encodeURIComponent(versionSelect.value);
    });
  }

  var app = document.getElementById("evaluate-app");
  if (!app) return;
  var modelId = app.dataset.model;

  // ---- evaluate on another version ------------------------------------------------
  function showEvaluation(ev) {
    var box = document.getElementById("other-eval-result");
    box.innerHTML = "";
    box.appendChild(el("p", { "class": "narrative", "data-testid": "other-eval-narrative" }, ev.narrative || ""));
    var table = el("table", { "class": "table", "data-testid": "other-eval-metrics" });
    var head = el("tr");
    ["Metric", "Value", "95% interval", "Lift over baseline"].forEach(function (h) { head.appendChild(el("th", {}, h)); });
    table.appendChild(el("thead")).appendChild(head);
    var tbody = el("tbody");
    var lift = ev.lift || {};
    Object.keys(ev.metrics || {}).forEach(function (name) {
      var m = ev.metrics[name] || {};
      var tr = el("tr", { "data-metric": name });
      tr.appendChild(el("td", {}, name));
      tr.appendChild(el("td", { "class": "num" }, fmt(m.value)));
      tr.appendChild(el("td", { "class": "num" }, m.ci_low === undefined || m.ci_low === null ? "—" : fmt(m.ci_low) + " – " + fmt(m.ci_high)));
      var l = lift[name];
      tr.appendChild(el("td", { "class": "num" + (l > 0 ? " better" : l < 0 ? " worse" : "") }, l === undefined || l === null ? "—" : (l > 0 ? "+" : "") + fmt(l)));
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    box.appendChild(el("p", { "class": "small muted" }, (ev.n_rows || 0).toLocaleString() + " labelled rows."));
    box.appendChild(table);
    if (ev.per_class) box.appendChild(perClassTable(ev.per_class));
  }

  function perClassTable(perClass) {
    var table = el("table", { "class": "table", "data-testid": "other-eval-per-class" });
    var head = el("tr");
    [["Class", ""], ["Precision", "num"], ["Recall", "num"], ["F1", "num"], ["Rows", "num"]].forEach(function (h) {
      head.appendChild(el("th", h[1] ? { "class": h[1] } : {}, h[0]));
    });
    table.appendChild(el("thead")).appendChild(head);
    var tbody = el("tbody");
    Object.keys(perClass).forEach(function (label) {
      var c = perClass[label] || {};
      var tr = el("tr", { "data-class": label });
      tr.appendChild(el("td", {}, label));
      [c.precision, c.recall, c.f1].forEach(function (v) { tr.appendChild(el("td", { "class": "num" }, fmt(v))); });
      tr.appendChild(el("td", { "class": "num" }, String(c.support === undefined ? "—" : c.support)));
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    return table;
  }

  var otherForm = document.getElementById("other-eval-form");
  otherForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var versionId = document.getElementById("other-eval-version").value;
    var errorBox = document.getElementById("other-eval-error");
    if (!versionId) return;
    var button = otherForm.querySelector("button[type=submit]");
    button.disabled = true;
    errorBox.hidden = true;
    document.getElementById("other-eval-result").textContent = "Scoring…";
    api("POST", "/api/v1/models/" + modelId + "/evaluations", { version_id: versionId }).then(function (r) {
      button.disabled = false;
      if (r.status !== 201) {
        document.getElementById("other-eval-result").textContent = "";
        errorBox.textContent = errorMessage(r.body, "The evaluation failed (HTTP " + r.status + ").");
        errorBox.hidden = false;
        return;
      }
      showEvaluation(r.body);
    });
  });

  // ---- deploy this version ------------------------------------------------------------
  var deployButton = document.getElementById("deploy-button");
  var deployForm = document.getElementById("deploy-model-form");
  var deployError = document.getElementById("deploy-model-error");
  deployButton.addEventListener("click", function () {
    deployForm.hidden = !deployForm.hidden;
    deployButton.setAttribute("aria-expanded", String(!deployForm.hidden));
    if (!deployForm.hidden) document.getElementById("deploy-model-name").focus();
  });
  deployForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = document.getElementById("deploy-model-name").value.trim();
    var submit = deployForm.querySelector("button[type=submit]");
    submit.disabled = true;
    deployError.hidden = true;
    api("POST", "/api/v1/deployments", { name: name, model_version_id: app.dataset.version }).then(function (r) {
      submit.disabled = false;
      if (r.status !== 201) {
        var hint = r.body && r.body.error && r.body.error.hint;
        deployError.textContent = errorMessage(r.body, "The model could not be deployed (HTTP " + r.status + ").") + (hint ? " " + hint : "");
        deployError.hidden = false;
        return;
      }
      window.location.href = "/stages/deploy?deployment=" + encodeURIComponent(r.body.name);
    });
  });

  // ---- refit --------------------------------------------------------------------
  var refitButton = document.getElementById("refit-button");
  var refitStatus = document.getElementById("refit-status");
  var refitBar = document.getElementById("refit-progress");

  function followRefit(jobId) {
    api("GET", "/api/v1/jobs/" + jobId).then(function (r) {
      var job = r.body || {};
      refitBar.firstElementChild.style.width = Math.round((job.progress || 0) * 100) + "%";
      refitStatus.textContent = job.message || job.status || "";
      if (job.status === "succeeded") {
        refitStatus.textContent = "Refit done: opening the new version…";
        window.location.href = "/stages/evaluate?model=" + encodeURIComponent(modelId);
      } else if (job.status === "failed" || job.status === "cancelled") {
        refitStatus.textContent = errorMessage({ error: job.error }, "The refit " + job.status + ".");
        refitStatus.className = "alert error";
        refitButton.disabled = false;
      } else {
        setTimeout(function () { followRefit(jobId); }, 1000);
      }
    });
  }

  refitButton.addEventListener("click", function () {
    refitButton.disabled = true;
    refitStatus.className = "small";
    refitStatus.textContent = "Starting the refit…";
    api("POST", "/api/v1/models/" + modelId + "/refit", {}).then(function (r) {
      if (r.status !== 202) {
        refitStatus.textContent = errorMessage(r.body, "The refit could not start (HTTP " + r.status + ").");
        refitStatus.className = "alert error";
        refitButton.disabled = false;
        return;
      }
      refitBar.hidden = false;
      followRefit(r.body.job_id);
    });
  });
})();
