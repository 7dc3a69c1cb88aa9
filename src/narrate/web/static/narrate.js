// Renders every <script type="application/json" data-chart="ID"> block into the element
// with that id using the locally served Plotly; re-runs after HTMX swaps.
(function () {
  function renderCharts(root) {
    var blocks = (root || document).querySelectorAll('script[type="application/json"][data-chart]');
    if (!blocks.length) return;
    if (!window.Plotly) {
      var s = document.createElement("script");
      s.src = "/static/vendor/plotly.min.js";
      s.onload = function () { renderCharts(root); };
      document.head.appendChild(s);
      return;
    }
    blocks.forEach(function (b) {
      var target = document.getElementById(b.dataset.chart);
      if (!target || target.dataset.rendered) return;
      var spec = JSON.parse(b.textContent);
      var layout = Object.assign({ margin: { t: 30, r: 10, b: 40, l: 50 }, autosize: true }, spec.layout || {});
      window.Plotly.newPlot(target, spec.data, layout, { responsive: true, displaylogo: false });
      target.dataset.rendered = "1";
    });
  }
  window.narrateRenderCharts = renderCharts;
  document.addEventListener("DOMContentLoaded", function () { renderCharts(document); });
  document.addEventListener("htmx:afterSwap", function (e) { renderCharts(e.target); });
})();

// Helpers the stage scripts share: JSON API calls with the session cookie and the CSRF
// header (a FormData body is sent as multipart), DOM elements, and Plotly loaded once.
(function () {
  function call(method, url, body) {
    var headers = { "X-CSRF-Token": document.body.dataset.csrf || "", "Accept": "application/json" };
    var payload;
    if (body instanceof FormData) {
      payload = body;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    return fetch(url, { method: method, headers: headers, body: payload, credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; });
      })
      .catch(function () { return { status: 0, body: { error: { message: "The server could not be reached. Check the connection and try again." } } }; });
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function withPlotly(callback) {
    if (window.Plotly) { callback(); return; }
    var script = document.querySelector("script[data-plotly]");
    if (!script) {
      script = el("script", { src: "/static/vendor/plotly.min.js", "data-plotly": "1" });
      document.head.appendChild(script);
    }
    script.addEventListener("load", callback);
  }

  window.narrate = { call: call, el: el, withPlotly: withPlotly };
})();
