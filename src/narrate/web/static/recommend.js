// Recommendation cards (docs/assistant.md): fetch the items, show each with its reason,
// effect and facts, and apply its action in one click. Every text goes in as textContent.
(function () {
  var box = document.querySelector(".recommendations[data-url]");
  var csrf = document.body.dataset.csrf || "";
  var trainForm = document.getElementById("train-form");

  function setValue(id, value) {
    var input = document.getElementById(id);
    if (!input || value === undefined || value === null) return false;
    input.value = String(value);
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return input.value === String(value);
  }

  // Training options -> the Train form's fields; returns the names that have no field.
  function fillTrainForm(options) {
    var fields = {
      target: "train-target", task: "train-task", time_budget_s: "train-budget",
      imbalance: "train-imbalance", cv: "train-cv", max_trials: "train-max-trials",
      metric: "train-metric", seed: "train-seed",
    };
    var missing = [];
    Object.keys(options).forEach(function (key) {
      if (key === "threshold") {
        var t = options.threshold || {};
        setValue("train-threshold-objective", t.objective);
        if (t.target_value !== undefined) setValue("train-threshold-value", t.target_value);
      } else if (!fields[key] || !setValue(fields[key], options[key])) {
        missing.push(key);
      }
    });
    return missing;
  }

  if (trainForm) {  // options handed over in the URL by a card on another page
    var handed = new URLSearchParams(window.location.search).get("options");
    if (handed) {
      try { fillTrainForm(JSON.parse(handed)); } catch (e) { /* a hand-edited URL: ignore */ }
    }
  }
  if (!box) return;

  var list = box.querySelector(".rec-list");
  var status = box.querySelector(".rec-status");
  var error = box.querySelector(".rec-error");
  var dataset = box.dataset.dataset;
  var SHOWN = 12;

  function showError(body, fallback) {
    var e = (body && body.error) || {};
    error.textContent = (e.message || fallback) + (e.hint ? " " + e.hint : "");
    error.hidden = false;
  }

  function node(tag, cls, text) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function send(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (r) {
      return r.json().then(function (j) { return { ok: r.ok, status: r.status, body: j }; });
    });
  }

  function waitJob(jobId) {
    return send("GET", "/api/v1/jobs/" + jobId).then(function (r) {
      var s = r.body.status;
      if (s === "succeeded" || s === "failed" || s === "cancelled") return r.body;
      return new Promise(function (ok) { setTimeout(ok, 400); }).then(function () { return waitJob(jobId); });
    });
  }

  function applySteps(item, button) {
    button.disabled = true;
    button.textContent = "Applying…";
    error.hidden = true;
    var body = { steps: item.action.steps };
    if (box.dataset.version) body.version_id = box.dataset.version;
    send("POST", "/api/v1/datasets/" + dataset + "/recipes/apply", body).then(function (r) {
      if (!r.ok) throw r.body;
      return waitJob(r.body.job_id);
    }).then(function (job) {
      if (job.status !== "succeeded") throw { error: { message: job.error || "The recipe did not finish." } };
      button.textContent = "Applied";
      var url = new URL(window.location.href);
      url.searchParams.delete("options");
      window.location.assign(url.toString());
    }).catch(function (body) {
      button.disabled = false;
      button.textContent = "Apply";
      showError(body, "Could not apply the recommendation.");
    });
  }

  function actionControl(item) {
    var action = item.action;
    if (action.type === "recipe_steps" && dataset) {
      var button = node("button", "small rec-apply", "Apply");
      button.type = "button";
      button.setAttribute("data-testid", "rec-apply");
      button.addEventListener("click", function () { applySteps(item, button); });
      return button;
    }
    if (action.type === "training_options") {
      if (trainForm) {
        var fill = node("button", "small rec-apply", "Fill in the form");
        fill.type = "button";
        fill.setAttribute("data-testid", "rec-apply");
        fill.addEventListener("click", function () {
          var missing = fillTrainForm(action.options);
          fill.textContent = missing.length ? "Filled (not in the form: " + missing.join(", ") + ")" : "Filled in";
        });
        return fill;
      }
      if (dataset) {
        var link = node("a", "button-link small", "Use in Train");
        link.href = "/stages/train?dataset=" + encodeURIComponent(dataset) +
          "&options=" + encodeURIComponent(JSON.stringify(action.options));
        return link;
      }
    }
    return null;
  }

  function card(item) {
    var el = node("article", "rec-card " + item.severity);
    el.setAttribute("data-rec-id", item.id);
    el.title = item.facts.map(function (f) { return f.name + ": " + f.value + " (" + f.source + ")"; }).join("\n");
    var head = node("h3", null, item.title + " ");
    head.appendChild(node("span", "badge " + item.severity, item.severity));
    el.appendChild(head);
    el.appendChild(node("p", "small", item.reason));
    el.appendChild(node("p", "small muted", item.effect));
    var control = actionControl(item);
    if (control) el.appendChild(control);
    return el;
  }

  send("GET", box.dataset.url).then(function (r) {
    if (!r.ok) { status.textContent = ""; showError(r.body, "Could not load recommendations."); return; }
    var items = r.body.items || [];
    status.textContent = items.length ? items.length + " recommendation(s)" : "Nothing stands out: no recommendations.";
    items.slice(0, SHOWN).forEach(function (item) { list.appendChild(card(item)); });
    if (items.length > SHOWN) {  // wide tables: the most important first, the rest on demand
      var more = node("button", "small", "Show " + (items.length - SHOWN) + " more");
      more.type = "button";
      more.setAttribute("data-testid", "rec-more");
      more.addEventListener("click", function () {
        items.slice(SHOWN).forEach(function (item) { list.appendChild(card(item)); });
        more.remove();
      });
      box.insertBefore(more, error);
    }
  }).catch(function () { showError(null, "Could not load recommendations."); });
})();
