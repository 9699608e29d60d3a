// Draws every <canvas data-chart="ID"> from the JSON in <script id="ID">: stacked bars, one
// dataset per series. The numbers are also in the table beside each chart; this only draws them.
"use strict";
(function () {
  if (typeof Chart === "undefined") {
    return;
  }
  var palette = ["#1f6feb", "#d9480f", "#2b8a3e", "#9c36b5", "#e67700", "#0b7285", "#c2255c", "#5c940d",
                 "#364fc7", "#862e9c"];
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) {
      return;
    }
    var data = JSON.parse(source.textContent);
    data.datasets.forEach(function (dataset, i) {
      dataset.backgroundColor = palette[i % palette.length];
      dataset.data = dataset.data.map(Number);
    });
    new Chart(canvas, {
      type: "bar",
      data: data,
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  });
})();
