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
