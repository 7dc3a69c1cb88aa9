// Upload with a real progress bar (XMLHttpRequest upload events), then open the profile.
(function () {
  var form = document.getElementById("upload-form");
  if (!form) return;
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  var errorBox = document.getElementById("upload-error");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    errorBox.hidden = true;
    var file = document.getElementById("upload-file").files[0];
    if (!file) return;
    var maxMb = Number(form.dataset.maxMb);
    if (file.size > maxMb * 1024 * 1024) {
      errorBox.textContent = "'" + file.name + "' is " + (file.size / 1048576).toFixed(1) +
        " MB; the limit is " + maxMb + " MB.";
      errorBox.hidden = false;
      return;
    }
    // Send the raw file (streamed to disk by the server), options in the query string.
    var params = new URLSearchParams({ filename: file.name });
    ["name", "sheet"].forEach(function (k) { var v = form.elements[k].value; if (v) params.set(k, v); });
    if (form.elements.skip_bad_lines.checked) params.set("skip_bad_lines", "true");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/datasets?" + params.toString());
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("X-CSRF-Token", document.body.dataset.csrf || "");
    xhr.setRequestHeader("Accept", "application/json");
    bar.hidden = false;
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round((e.loaded / e.total) * 100);
      bar.firstElementChild.style.width = pct + "%";
      status.textContent = "Uploading " + file.name + ": " + pct + "%";
    };
    xhr.upload.onload = function () { status.textContent = "Reading, checking and profiling " + file.name + " ..."; };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 201) {
        status.textContent = "Done: " + body.version.n_rows + " rows.";
        window.location.href = "/stages/clean?dataset=" + body.id;
      } else {
        bar.hidden = true;
        status.textContent = "";
        errorBox.textContent = (body.error && body.error.message) || ("Upload failed (" + xhr.status + ")");
        if (body.error && body.error.hint) errorBox.textContent += " " + body.error.hint;
        errorBox.hidden = false;
      }
    };
    xhr.onerror = function () { errorBox.textContent = "The connection failed during the upload."; errorBox.hidden = false; };
    xhr.send(file);
  });
})();
