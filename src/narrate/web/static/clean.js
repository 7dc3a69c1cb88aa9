// Clean stage: set the target and override column types (a new version) via the API.
(function () {
  var app = document.getElementById("clean-app");
  if (!app) return;
  var id = app.dataset.dataset;
  var csrf = document.body.dataset.csrf || "";
  function patch(body) {
    return fetch("/api/v1/datasets/" + id, {
      method: "PATCH", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); });
  }
  document.getElementById("target-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var value = document.getElementById("target-select").value;
    if (!value) return;
    patch({ target: value }).then(function () { window.location.reload(); });
  });
  document.querySelectorAll(".kind-select").forEach(function (sel) {
    sel.addEventListener("change", function () {
      var types = {};
      types[sel.dataset.column] = sel.value;
      patch({ column_types: types }).then(function (r) {
        if (r.ok) { window.location.reload(); return; }
        var box = document.getElementById("kind-error");
        box.textContent = (r.body.error && r.body.error.message) || "Could not change the type.";
        box.hidden = false;
      });
    });
  });
})();
