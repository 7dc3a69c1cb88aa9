// Upload with a real progress bar (XMLHttpRequest upload events), then open the profile.
(function () {
  var form = document.getElementById("upload-form");
  if (!form) return;
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  var errorBox = document.getElementById("upload-error");
  var sheetInput = document.getElementById("upload-sheet");
  var sheetList = document.getElementById("upload-sheet-list");

  // Offer an Excel workbook's sheets as a list. An .xlsx file is a zip archive: read only
  // its central directory and xl/workbook.xml (inflated by the browser), never the whole
  // file. Anything unexpected leaves the free-text sheet field as it is.
  function bytes(file, start, end) {
    return file.slice(start, end).arrayBuffer().then(function (b) { return new DataView(b); });
  }
  function readSheetNames(file) {
    var tailStart = Math.max(0, file.size - 65557);
    return bytes(file, tailStart, file.size).then(function (tail) {
      for (var i = tail.byteLength - 22; i >= 0; i--) {
        if (tail.getUint32(i, true) === 0x06054b50) {
          var size = tail.getUint32(i + 12, true), offset = tail.getUint32(i + 16, true);
          return bytes(file, offset, offset + size).then(findWorkbook.bind(null, file));
        }
      }
      return [];
    });
  }
  function findWorkbook(file, dir) {
    var decoder = new TextDecoder();
    for (var at = 0; at + 46 <= dir.byteLength && dir.getUint32(at, true) === 0x02014b50;) {
      var nameLen = dir.getUint16(at + 28, true);
      var name = decoder.decode(new Uint8Array(dir.buffer, at + 46, nameLen));
      if (name === "xl/workbook.xml") {
        return inflateEntry(file, dir.getUint16(at + 10, true), dir.getUint32(at + 20, true),
          dir.getUint32(at + 42, true)).then(sheetNamesOf);
      }
      at += 46 + nameLen + dir.getUint16(at + 30, true) + dir.getUint16(at + 32, true);
    }
    return [];
  }
  function inflateEntry(file, method, size, local) {
    return bytes(file, local, local + 30).then(function (head) {
      var start = local + 30 + head.getUint16(26, true) + head.getUint16(28, true);
      var data = file.slice(start, start + size);
      if (method === 0) return data.text();
      return new Response(data.stream().pipeThrough(new DecompressionStream("deflate-raw"))).text();
    });
  }
  function sheetNamesOf(xml) {
    var doc = new DOMParser().parseFromString(xml, "application/xml");
    return Array.prototype.map.call(doc.getElementsByTagNameNS("*", "sheet"), function (el) {
      return el.getAttribute("name");
    }).filter(Boolean);
  }
  function showSheets(names) {
    var wasList = !sheetList.hidden;
    sheetList.textContent = "";
    names.forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      sheetList.appendChild(option);
    });
    var hasNames = names.length > 0;
    sheetList.hidden = !hasNames;
    sheetInput.hidden = hasNames;
    if (hasNames) {
      if (names.indexOf(sheetInput.value) < 0) sheetInput.value = names[0];
      sheetList.value = sheetInput.value;
    } else if (wasList) {
      sheetInput.value = "";
    }
  }
  sheetList.addEventListener("change", function () { sheetInput.value = sheetList.value; });
  document.getElementById("upload-file").addEventListener("change", function (ev) {
    var file = ev.target.files[0];
    showSheets([]);
    if (!file || !/\.xlsx$/i.test(file.name) || typeof DecompressionStream === "undefined") return;
    readSheetNames(file).then(showSheets, function () { showSheets([]); });
  });
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
        var sheets = body.error && body.error.details && body.error.details.sheets;
        if (Array.isArray(sheets) && sheets.length) showSheets(sheets);
        errorBox.hidden = false;
      }
    };
    xhr.onerror = function () { errorBox.textContent = "The connection failed during the upload."; errorBox.hidden = false; };
    xhr.send(file);
  });
})();
