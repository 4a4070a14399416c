// The staff analytics page's two charts, drawn with the vendored Chart.js from the numbers
// the server put in #analytics-data (the same ones as the day-by-day table).
(() => {
  const source = document.getElementById("analytics-data");
  if (!source || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const css = getComputedStyle(document.documentElement);
  const colour = name => css.getPropertyValue(name).trim();
  // One colour per outcome, in OUTCOMES' order: answered, passages only, no sources, no match, failed.
  const palette = ["#2e7d32", "#3056d3", "#8e6bbf", "#d08a00", colour("--err") || "#b42318"];
  const still = matchMedia("(prefers-reduced-motion: reduce)").matches;
  Chart.defaults.color = colour("--muted");
  Chart.defaults.borderColor = colour("--line");
  Chart.defaults.font.family = css.fontFamily;
  const common = {
    responsive: true,
    maintainAspectRatio: false,
    animation: still ? false : { duration: 300 },
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    scales: {
      x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
      y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
    },
  };
  new Chart(document.getElementById("outcomes-chart"), {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: data.outcomes.map((o, i) => ({ label: o.label, data: o.data, backgroundColor: palette[i] })),
    },
    options: common,
  });
  new Chart(document.getElementById("feedback-chart"), {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: "Helpful", data: data.helpful, backgroundColor: "#2e7d32" },
        { label: "Not helpful", data: data.unhelpful, backgroundColor: palette[4] },
      ],
    },
    options: common,
  });
})();
