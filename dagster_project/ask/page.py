"""The single web page of `mesh serve`: search, product pages and the ask box. Plain
HTML and JavaScript, no external CDN (the page works offline): charts are drawn by
Plotly, served by `mesh serve` from the installed `plotly` package (/static/plotly.min.js).
An answer gets the chart `dagster_project.ask.charts.answer_chart` chose; a product page
a trend panel (rows and anomalies per partition, quality score and drift over time)."""

import json

from dagster_project.ask.values import NO_VALUE

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Meshwork - ask the mesh</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font-family: system-ui, sans-serif; margin: 0; color: #1d2630; background: #f6f7f9; }
  header { background: #1d3557; color: white; padding: 12px 24px; }
  header h1 { margin: 0; font-size: 20px; }
  main { display: grid; grid-template-columns: 320px 1fr; gap: 16px; padding: 16px 24px; }
  section { background: white; border-radius: 8px; padding: 12px 16px;
            box-shadow: 0 1px 3px rgba(0,0,0,.08); margin-bottom: 16px; }
  input[type=text] { width: 100%; box-sizing: border-box; padding: 8px; font-size: 15px; }
  button { padding: 8px 14px; font-size: 15px; cursor: pointer; }
  table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
  th, td { border: 1px solid #d8dde3; padding: 4px 8px; text-align: left; }
  th { background: #eef1f5; }
  pre { background: #0f1720; color: #d7e3f4; padding: 8px; overflow-x: auto; font-size: 12px; }
  pre.docs { white-space: pre-wrap; background: #f3f4f6; color: #111; }
  .hit { padding: 4px 0; cursor: pointer; color: #1d4ed8; }
  .muted { color: #5b6675; font-size: 13px; }
  .error { color: #b91c1c; }
  .row { display: flex; gap: 8px; }
  .chart { width: 100%; max-width: 760px; }
  .trends { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); }
</style>
</head>
<body>
<header class="row"><h1>Meshwork &mdash; ask the mesh</h1>
  <input type="password" id="api-key" autocomplete="off"
    placeholder="API key (optional: reads as its role)"
    title="Without a key you read as an analyst">
</header>
<main>
  <div>
    <section>
      <h2>Search</h2>
      <form id="search-form" class="row">
        <input type="text" id="search-box" placeholder="e.g. customer email, revenue">
        <button type="submit">Search</button>
      </form>
      <div id="search-results"></div>
    </section>
    <section>
      <h2>Products</h2>
      <div id="products"></div>
    </section>
  </div>
  <div>
    <section>
      <h2>Ask a question</h2>
      <form id="ask-form" class="row">
        <input type="text" id="ask-box" placeholder="e.g. top 5 stores by revenue in 2025">
        <button type="submit" id="ask-button">Ask</button>
      </form>
      <p class="muted">Follow-ups keep the context ("and by month?").
        <a href="#" id="new-conversation">New conversation</a></p>
      <div id="answer"></div>
    </section>
    <section>
      <h2>What changed?</h2>
      <button id="insights-button">Show insights</button>
      <pre id="insights" class="docs" hidden></pre>
    </section>
    <section id="product-page" hidden></section>
  </div>
</main>
<script src="/static/plotly.min.js"></script>
<script>
let conversationId = null;
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const NO_VALUE = {{NO_VALUE}};  // a NULL group key, as the CLI and narratives show it
const fmt = (v) => v === null || v === undefined ? NO_VALUE :
  typeof v === "number" && !Number.isInteger(v) ?
  v.toLocaleString(undefined, {maximumFractionDigits: 2}) : v;

function table(columns, rows, id) {
  const head = columns.map((c) => `<th>${esc(c)}</th>`).join("");
  const body = rows.map((r) => "<tr>" + r.map((v) => `<td>${esc(fmt(v))}</td>`).join("") +
    "</tr>").join("");
  return `<table id="${id}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

// A Plotly chart in `el`: one trace per measure, or per value of `spec.series`; the axis
// titles are the columns.
function chart(el, spec, columns, rows, height = 320) {
  if (!spec || typeof Plotly === "undefined") return;
  const at = (name) => columns.indexOf(name);
  const kind = spec.type === "line" ?
    {type: "scatter", mode: "lines+markers"} : {type: "bar"};
  const trace = (name, rs, y) => ({...kind, name: String(name),
    x: rs.map((r) => r[at(spec.x)]), y: rs.map((r) => r[at(y)])});
  const traces = spec.series ?
    [...new Set(rows.map((r) => r[at(spec.series)]))].map((group) =>
      trace(group, rows.filter((r) => r[at(spec.series)] === group), spec.y[0])) :
    spec.y.map((y) => trace(y, rows, y));
  Plotly.newPlot(el, traces, {
    height, margin: {t: 24, r: 16, l: 64, b: 56}, showlegend: traces.length > 1,
    xaxis: {title: {text: spec.x}, automargin: true},
    yaxis: {title: {text: spec.ylabel || spec.y.join(", ")}, automargin: true},
  }, {displaylogo: false, responsive: true});
}

// The product page's trends: rows and anomalies per partition, the quality score over time.
function trends(t) {
  const panels = [];
  if (t.rows.length) panels.push(["trend-rows", `Rows per ${t.partition}`,
    {type: "bar", x: t.partition, y: ["rows"]}, [t.partition, "rows"], t.rows]);
  if (t.anomalies.length) panels.push(["trend-anomalies", `Flagged anomalies per ${t.partition}`,
    {type: "bar", x: t.partition, y: ["anomalies"]}, [t.partition, "anomalies"], t.anomalies]);
  if (t.history.length) {
    const dims = ["freshness", "anomalies", "drift"].filter((d) =>
      t.history.some((h) => h[d] !== null && h[d] !== undefined));
    const columns = ["evaluated at", "quality score", ...dims.map((d) => `${d} (%)`)];
    const rows = t.history.map((h) => [h.evaluated_at.slice(0, 16).replace("T", " "), h.score,
      ...dims.map((d) => h[d] === null || h[d] === undefined ? null : 100 * h[d])]);
    panels.push(["trend-quality", "Quality score, freshness, anomalies and drift over time",
      {type: "line", x: "evaluated at", y: columns.slice(1), ylabel: "score (0-100)"},
      columns, rows]);
  }
  if (!panels.length) return "";
  setTimeout(() => panels.forEach(([id, , spec, columns, rows]) =>
    chart($(id), spec, columns, rows, 260)));
  return "<h3>Trends</h3><div class=\"trends\">" + panels.map(([id, title]) =>
    `<div><p class="muted">${esc(title)}</p><div id="${id}" class="chart"></div></div>`
  ).join("") + "</div>";
}

$("api-key").value = sessionStorage.getItem("meshwork-api-key") || "";
$("api-key").addEventListener("change", () => {
  sessionStorage.setItem("meshwork-api-key", $("api-key").value.trim());
  conversationId = null;  // a conversation belongs to one caller
});

async function api(path, options = {}) {
  const key = $("api-key").value.trim();
  const headers = {...(options.headers || {}), ...(key ? {Authorization: `Bearer ${key}`} : {})};
  const response = await fetch(path, {...options, headers});
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

$("ask-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("ask-box").value.trim();
  if (!question) return;
  $("answer").innerHTML = '<p class="muted">Thinking...</p>';
  try {
    const a = await api("/api/ask", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({question, conversation_id: conversationId})});
    conversationId = a.conversation_id;
    let html = `<p id="status" class="muted">${esc(a.status || "answered")}` +
      (a.interpretation ? `: <span id="interpretation">${esc(a.interpretation)}</span>` : "") +
      `</p><p id="narrative">${esc(a.narrative)}</p>`;
    if (a.choices && a.choices.length) html += "<ul id=\"choices\">" +
      a.choices.map((c) => `<li>${esc(c)}</li>`).join("") + "</ul>";
    if (a.chart) html += '<div id="answer-chart" class="chart"></div>';
    if (a.columns.length) html += table(a.columns, a.rows, "answer-table");
    if (a.sql) html += `<details open><summary>SQL</summary>
      <pre id="answer-sql">${esc(a.sql)}</pre></details>`;
    html += `<p class="muted">answered by ${esc(a.provider)}</p>`;
    $("answer").innerHTML = html;
    chart($("answer-chart"), a.chart, a.columns, a.rows);
  } catch (error) {
    $("answer").innerHTML = `<p class="error">${esc(error.message)}</p>`;
  }
});

$("new-conversation").addEventListener("click", (event) => {
  event.preventDefault(); conversationId = null; $("answer").innerHTML = "";
});

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("search-box").value.trim();
  if (!q) return;
  const hits = await api("/api/search?q=" + encodeURIComponent(q));
  $("search-results").innerHTML = hits.length ? hits.map((h) => {
    const product = h.id.startsWith("product:") ? h.id.slice(8) :
      h.id.startsWith("column:") ? h.id.slice(7).split(".")[0] : null;
    const attrs = product ? ` class="hit" data-product="${esc(product)}"` : "";
    return `<div${attrs}><b>${esc(h.kind)}</b> ${esc(h.title)}
      <div class="muted">${esc(h.reasons.join("; "))}</div></div>`;
  }).join("") : '<p class="muted">Nothing matched.</p>';
});

document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-product]");
  if (target) showProduct(target.dataset.product);
});

async function showProduct(key) {
  const p = await api("/api/products/" + key);
  const schema = table(["column", "type", "classification", "mask", "description"],
    p.schema.map((c) => [c.name, c.type, c.classification || "", c.mask || "", c.description]),
    "schema-table");
  const q = p.quality;
  const policies = q.policies.map((r) => `${r.passed ? "pass" : "FAIL"} ${r.policy}`).join(", ");
  let html = `<h2>${esc(p.key)}</h2><p>${esc(p.description)}</p>
    <p class="muted">owner ${esc(p.owner)} &middot; contract v${esc(p.version)}
      &middot; ${esc(p.access)}</p>
    <h3>Schema</h3>${schema}
    <h3>Quality</h3><p>${esc(q.rows)} rows, table version ${esc(q.table_version)}, updated
      ${esc(q.last_update)}. ${esc(policies)}</p>
    <h3>Lineage</h3><p>upstream: ${esc(p.lineage.upstream.join(", ") || "none")};
      downstream: ${esc(p.lineage.downstream.join(", ") || "none")}</p>` + trends(p.trends);
  if (p.sample) html += `<h3>Sample rows (masked for your role)</h3>` +
    table(p.sample.columns, p.sample.rows, "sample-table");
  if (p.docs) html += `<h3>Documentation</h3><pre class="docs">${esc(p.docs)}</pre>`;
  $("product-page").innerHTML = html;
  $("product-page").hidden = false;
}

$("insights-button").addEventListener("click", async () => {
  const insights = await api("/api/insights");
  $("insights").textContent = [insights.markdown,
    ...insights.domains.map((d) => d.markdown)].filter(Boolean).join("\n\n");
  $("insights").hidden = false;
});

// A link can carry a question (/?q=top+5+stores+by+revenue asks it on load) or a product
// (/?product=sales/order_lines opens its page).
const params = new URLSearchParams(location.search);
const linked = params.get("q");
if (linked) {
  $("ask-box").value = linked;
  $("ask-form").requestSubmit();
}
if (params.get("product")) showProduct(params.get("product"));

api("/api/products").then((products) => {
  $("products").innerHTML = products.map((p) =>
    `<div class="hit" data-product="${esc(p.key)}">${esc(p.key)}</div>`).join("");
});
</script>
</body>
</html>
"""
PAGE = PAGE.replace("{{NO_VALUE}}", json.dumps(NO_VALUE))
