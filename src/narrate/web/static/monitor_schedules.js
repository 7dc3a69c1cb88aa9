// Monitor stage, one deployment: its schedules (what, when, next and last run, the last
// runs' outcomes), pause / resume / run now, and a form for a new schedule. Everything
// goes through the JSON API with the session cookie and the X-CSRF-Token header.
(function () {
  var app = document.getElementById("monitor-app");
  var card = document.getElementById("schedules-card");
  if (!app || !card) return;
  var call = window.narrate.call, el = window.narrate.el;
  var name = app.dataset.name;
  var canWrite = app.dataset.canWrite === "yes";
  var WHAT = { drift: "Drift check", retrain: "Retrain run", batch: "Batch scoring" };

  function when(iso) { return iso ? String(iso).slice(0, 16).replace("T", " ") : "—"; }

  function errorText(body, fallback) {
    var err = body && body.error;
    if (!err) return fallback;
    return (err.message || fallback) + (err.hint ? " " + err.hint : "");
  }

  function button(label, testid, onClick) {
    var b = el("button", { type: "button", class: "small", "data-testid": testid }, label);
    b.addEventListener("click", function () { b.disabled = true; onClick(); });
    return b;
  }

  function lastRun(td, id) {
    call("GET", "/api/v1/schedules/" + id + "/runs?limit=1").then(function (r) {
      var run = r.status === 200 && r.body.items && r.body.items[0];
      td.textContent = run ? when(run.scheduled_for) + " · " + run.status : "—";
      if (run) td.dataset.status = run.status;
    });
  }

  function load() {
    call("GET", "/api/v1/schedules?deployment=" + encodeURIComponent(name) + "&limit=100").then(function (r) {
      var body = card.querySelector("#schedules-table tbody");
      body.textContent = "";
      var items = r.status === 200 ? r.body.items || [] : [];
      document.getElementById("schedules-empty").hidden = items.length > 0;
      items.forEach(function (s) {
        var tr = el("tr", { "data-schedule": s.schedule_id, "data-paused": s.paused ? "yes" : "no" });
        tr.appendChild(el("td", {}, (WHAT[s.action.kind] || s.action.kind) + (s.paused ? " (paused)" : "")));
        tr.appendChild(el("td", {}, s.cron + " " + s.timezone));
        tr.appendChild(el("td", {}, s.paused ? "—" : when(s.next_run_at)));
        var last = el("td", { "data-field": "last-run" }, "…");
        tr.appendChild(last);
        lastRun(last, s.schedule_id);
        var actions = el("td");
        if (canWrite) {
          actions.appendChild(button("Run now", "schedule-run", function () {
            call("POST", "/api/v1/schedules/" + s.schedule_id + "/run").then(load);
          }));
          var verb = s.paused ? "resume" : "pause";
          actions.appendChild(button(s.paused ? "Resume" : "Pause", "schedule-" + verb, function () {
            call("POST", "/api/v1/schedules/" + s.schedule_id + "/" + verb).then(load);
          }));
        }
        tr.appendChild(actions);
        body.appendChild(tr);
      });
    });
  }
  load();

  var form = document.getElementById("schedule-form");
  if (!form) return;
  var kind = document.getElementById("schedule-kind");
  kind.addEventListener("change", function () {
    document.getElementById("schedule-version-label").hidden = kind.value !== "batch";
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var box = document.getElementById("schedule-error");
    box.hidden = true;
    var action = { kind: kind.value, deployment: name };
    if (kind.value === "drift") action.window = "7d";
    if (kind.value === "batch") action.version_id = document.getElementById("schedule-version").value.trim();
    var body = { cron: document.getElementById("schedule-cron").value.trim(), timezone: document.getElementById("schedule-timezone").value.trim() || "UTC", action: action };
    call("POST", "/api/v1/schedules", body).then(function (r) {
      if (r.status !== 201) { box.textContent = errorText(r.body, "The schedule could not be saved."); box.hidden = false; return; }
      load();
    });
  });
})();
