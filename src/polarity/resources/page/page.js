// The try-it page: the models from GET /api/v1/models, every text through
// POST /api/v1/analyze/batch, with the typed key, as any client's would.
// Text from the user and the service is only ever set as textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

// The served models, as /api/v1/models lists them for the typed key.
async function listModels() {
  const response = await fetch("/api/v1/models", {headers: {"X-API-Key": $("key").value}});
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    return status(`${response.status}: ${answer.error ? answer.error.message : response.statusText}`, true);
  }
  $("model").replaceChildren(...answer.data.map((m) => {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = m.default && m.name !== "default" ? `${m.name} (default)` : m.name;
    return option;
  }));
  status("");
}

function status(message, error = false) {
  $("status").textContent = message;
  $("status").className = error ? "error" : "";
}

// The words a reason names: 'word' in the occlusion explanation (docs/service.md).
function reasonWords(reasoning) {
  return [...(reasoning || "").matchAll(/'([^']+)'/g)].map((m) => m[1].toLowerCase());
}

// The text as nodes, with every word the reason names inside <mark>.
function highlighted(text, words) {
  const out = document.createElement("span");
  for (const piece of text.split(/(\s+)/)) {
    const bare = piece.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "").toLowerCase();
    if (bare && words.includes(bare)) {
      const mark = document.createElement("mark");
      mark.textContent = piece;
      out.append(mark);
    } else {
      out.append(document.createTextNode(piece));
    }
  }
  return out;
}

function row(result, model) {
  const tr = document.createElement("tr");
  const text = document.createElement("td");
  text.className = "text";
  text.append(highlighted(result.text, reasonWords(result.reasoning)));
  if (result.reasoning) {
    const why = document.createElement("span");
    why.className = "reason";
    why.textContent = result.reasoning;
    text.append(why);
  }
  const label = document.createElement("td");
  label.className = `label label-${result.predicted_sentiment}`;
  label.textContent = result.predicted_sentiment;
  const confidence = document.createElement("td");
  confidence.className = "confidence";
  confidence.textContent = `${(100 * result.confidence).toFixed(1)}%`;
  const tier = document.createElement("td");
  tier.className = "tier";
  const stage = result.escalation ? `, ${result.escalation.replace("_", " ")}` : "";
  tier.textContent = `${model} (${result.tier || "model"}${stage})`;
  tr.append(text, label, confidence, tier);
  return tr;
}

async function analyze(event) {
  event.preventDefault();
  const texts = $("texts").value.split("\n").map((t) => t.trim()).filter((t) => t);
  if (!texts.length) return status("paste at least one text", true);
  if (!$("model").value) await listModels();
  const model = $("model").value;
  if (!model) return;  // the key was refused: listModels said so
  const body = {texts, include_reasoning: $("reasons").checked, model};
  $("go").disabled = true;
  status("asking…");
  try {
    const response = await fetch("/api/v1/analyze/batch", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-API-Key": $("key").value},
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) {
      return status(`${response.status}: ${answer.error ? answer.error.message : response.statusText}`, true);
    }
    const rows = $("results").querySelector("tbody");
    rows.replaceChildren(...answer.results.map((r) => row(r, model)));
    $("results").hidden = false;
    status(`${answer.results.length} text(s) in ${(1000 * answer.total_processing_time).toFixed(0)} ms`);
  } catch (err) {
    status(`the service did not answer: ${err}`, true);
  } finally {
    $("go").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key").addEventListener("change", () => { if ($("key").value) listModels(); });
  $("ask").addEventListener("submit", analyze);
});
