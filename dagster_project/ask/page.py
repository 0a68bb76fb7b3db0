"""The single web page of `mesh serve`: search, product pages and the ask box. Plain
HTML and JavaScript, no external CDN (the page works offline)."""

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
<script>
let conversationId = null;
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g,
  (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const fmt = (v) => typeof v === "number" && !Number.isInteger(v) ?
  v.toLocaleString(undefined, {maximumFractionDigits: 2}) : v;

function table(columns, rows, id) {
  const head = columns.map((c) => `<th>${esc(c)}</th>`).join("");
  const body = rows.map((r) => "<tr>" + r.map((v) => `<td>${esc(fmt(v))}</td>`).join("") +
    "</tr>").join("");
  return `<table id="${id}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
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
    if (a.columns.length) html += table(a.columns, a.rows, "answer-table");
    if (a.sql) html += `<details open><summary>SQL</summary>
      <pre id="answer-sql">${esc(a.sql)}</pre></details>`;
    html += `<p class="muted">answered by ${esc(a.provider)}</p>`;
    $("answer").innerHTML = html;
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
      downstream: ${esc(p.lineage.downstream.join(", ") || "none")}</p>`;
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

// A link can carry a question: /?q=top+5+stores+by+revenue asks it on load.
const linked = new URLSearchParams(location.search).get("q");
if (linked) {
  $("ask-box").value = linked;
  $("ask-form").requestSubmit();
}

api("/api/products").then((products) => {
  $("products").innerHTML = products.map((p) =>
    `<div class="hit" data-product="${esc(p.key)}">${esc(p.key)}</div>`).join("");
});
</script>
</body>
</html>
"""
