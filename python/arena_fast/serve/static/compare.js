// arena-fast serve, Compare: adds turns in place and submits through
// POST /api/compare, building the result with the DOM (textContent only:
// every text from the user or the data stays text). Without this script the
// form posts to /compare and the server renders the same result.
"use strict";

(function () {
  const form = document.getElementById("compare-form");
  if (!form) return;
  const turns = document.getElementById("turns");
  const results = document.getElementById("results");
  const errorBox = document.getElementById("error");
  const maxTurns = Number(form.dataset.maxTurns || 64);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, String(value));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  function renumber() {
    turns.querySelectorAll("fieldset.turn").forEach(function (fs, i) {
      fs.querySelector("legend").textContent = "Turn " + (i + 1);
    });
  }

  function addTurn() {
    const all = turns.querySelectorAll("fieldset.turn");
    if (all.length >= maxTurns) {
      showError("at most " + maxTurns + " turns");
      return;
    }
    const copy = all[all.length - 1].cloneNode(true);
    copy.querySelectorAll("textarea").forEach(function (t) { t.value = ""; });
    turns.appendChild(copy);
    renumber();
    copy.querySelector("textarea").focus();
  }

  function values(name) {
    return Array.from(form.querySelectorAll("[name='" + name + "']")).map(function (t) {
      return t.value;
    });
  }

  function request() {
    return {
      prompt: values("prompt"),
      response_a: values("response_a"),
      response_b: values("response_b"),
      runs: Array.from(form.querySelectorAll("input[name='run']:checked")).map(function (c) {
        return c.value;
      }),
      encoder: form.querySelector("select[name='encoder']").value,
    };
  }

  function fixed(x) { return Number(x).toFixed(4); }

  function probsTable(res) {
    const columns = Object.keys(res.original);
    const table = el("table", { class: "probs" });
    const head = el("tr");
    head.appendChild(el("th"));
    columns.forEach(function (c) { head.appendChild(el("th", {}, c)); });
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    [["average", "swap-TTA average", res], ["original", "A first", res.original],
     ["swapped", "B first, mapped back", res.swapped]].forEach(function (row) {
      const tr = el("tr", { "data-pass": row[0] });
      tr.appendChild(el("th", {}, row[1]));
      columns.forEach(function (c) {
        tr.appendChild(el("td", { class: "prob", "data-col": c, "data-value": row[2][c] },
          fixed(row[2][c])));
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
    return table;
  }

  function rewardResult(article, r) {
    // A reward run: each answer's reward, and the probabilities derived from them.
    const res = r.result;
    const p = el("p");
    p.appendChild(document.createTextNode("Verdict "));
    p.appendChild(el("strong", { class: "verdict" }, res.verdict));
    p.appendChild(document.createTextNode(" · "));
    p.appendChild(el("span", { class: "reward-note" },
      "a reward model: each answer scored once (no A/B swap)"));
    article.appendChild(p);
    const rewards = el("table", { class: "rewards" });
    const head = el("tr");
    head.appendChild(el("th"));
    head.appendChild(el("th", {}, "reward"));
    rewards.appendChild(el("thead")).appendChild(head);
    const body = rewards.appendChild(el("tbody"));
    [["a", "answer A", res.reward_a], ["b", "answer B", res.reward_b]].forEach(function (row) {
      const tr = el("tr", { "data-answer": row[0] });
      tr.appendChild(el("th", {}, row[1]));
      tr.appendChild(el("td", { class: "reward", "data-value": row[2] }, fixed(row[2])));
      body.appendChild(tr);
    });
    article.appendChild(rewards);
    const probs = el("table", { class: "probs" });
    const top = el("tr");
    top.appendChild(el("th"));
    r.columns.forEach(function (c) { top.appendChild(el("th", {}, c)); });
    probs.appendChild(el("thead")).appendChild(top);
    const tr = el("tr", { "data-pass": "reward" });
    tr.appendChild(el("th", {}, "from the rewards"));
    r.columns.forEach(function (c) {
      tr.appendChild(el("td", { class: "prob", "data-col": c, "data-value": res[c] }, fixed(res[c])));
    });
    probs.appendChild(el("tbody")).appendChild(tr);
    article.appendChild(probs);
    const summary = el("p", { class: "muted tokens-summary" },
      res.tokens[0] + " / " + res.tokens[1] + " tokens (prompt + A / prompt + B) of " +
      res.max_length + "; turns kept " + res.turns_kept[0] + " / " + res.turns_kept[1] +
      " of " + res.turns);
    if (res.truncated) {
      summary.appendChild(document.createTextNode("; "));
      summary.appendChild(el("span", { class: "cut-flag" }, "cut"));
    }
    article.appendChild(summary);
    return article;
  }

  function runResult(r) {
    const article = el("article", { class: "run-result", "data-run": r.name });
    article.appendChild(el("h3", {}, r.name));
    if (r.error) {
      article.appendChild(el("p", { class: "run-error" }, r.error));
      return article;
    }
    if (r.reward) {
      return rewardResult(article, r);
    }
    const res = r.result;
    const p = el("p");
    p.appendChild(document.createTextNode("Verdict "));
    p.appendChild(el("strong", { class: "verdict" }, res.verdict));
    p.appendChild(document.createTextNode(" · "));
    p.appendChild(el("span", { class: "flip", "data-flip": res.flip ? "yes" : "no" },
      res.flip ? "flips under the A/B swap" : "the same in both orders"));
    article.appendChild(p);
    article.appendChild(probsTable(res));
    const summary = el("p", { class: "muted tokens-summary" },
      res.tokens[0] + " / " + res.tokens[1] + " tokens of " + res.max_length + " (" +
      res.full_length + " uncut); turns kept " + res.turns_kept[0] + " / " +
      res.turns_kept[1] + " of " + res.turns);
    if (res.truncated) {
      summary.appendChild(document.createTextNode("; "));
      summary.appendChild(el("span", { class: "cut-flag" }, "cut"));
    }
    article.appendChild(summary);
    return article;
  }

  function span(s) {
    return el("span", { class: "span k-" + s.kind, "data-kind": s.kind,
      title: s.kind + " · " + s.tokens + " tokens" }, s.text);
  }

  function order(name, ex, layout) {
    const div = el("div", { class: "order", "data-order": name });
    const titles = layout === "separate" ? ["prompt + A", "prompt + B"]
      : ["A first (original)", "B first (swapped)"];
    div.appendChild(el("h4", {}, name === "original" ? titles[0] : titles[1]));
    const summary = el("p", { class: "summary" }, ex.length + " of " + ex.full_length +
      " tokens · " + ex.turns_kept + " of " + ex.turns + " turns kept");
    if (ex.truncated) {
      summary.appendChild(document.createTextNode(" · "));
      summary.appendChild(el("span", { class: "cut-flag" }, "cut"));
    }
    div.appendChild(summary);
    const tokens = el("div", { class: "tokens" });
    ex.before.forEach(function (s) { tokens.appendChild(span(s)); });
    ex.turn_views.forEach(function (t) {
      const block = el("div", { class: "turn-block" + (t.kept ? "" : " dropped"),
        "data-turn": t.turn });
      block.appendChild(el("div", { class: "turn-label" },
        "Turn " + (t.turn + 1) + (t.kept ? "" : " · dropped")));
      t.header.forEach(function (s) { block.appendChild(span(s)); });
      t.fields.forEach(function (f) {
        const field = el("div", { class: "field" + (f.cut ? " cut" : ""), "data-field": f.field,
          "data-tokens": f.tokens, "data-kept": f.kept });
        const label = el("div", { class: "field-label" },
          f.label + " · " + f.kept + " of " + f.tokens + " tokens kept");
        if (f.cut) {
          label.appendChild(document.createTextNode(" · "));
          label.appendChild(el("span", { class: "cut-flag" }, "cut"));
        }
        field.appendChild(label);
        f.spans.forEach(function (s) { field.appendChild(span(s)); });
        block.appendChild(field);
      });
      tokens.appendChild(block);
    });
    ex.after.forEach(function (s) { tokens.appendChild(span(s)); });
    div.appendChild(tokens);
    return div;
  }

  function render(result) {
    results.replaceChildren();
    if (result.runs.length) {
      const section = el("section", { id: "verdicts" });
      section.appendChild(el("h2", {}, "Verdicts"));
      const side = el("div", { class: "side-by-side" });
      result.runs.forEach(function (r) { side.appendChild(runResult(r)); });
      section.appendChild(side);
      results.appendChild(section);
    }
    const encodings = el("section", { id: "encodings" });
    encodings.appendChild(el("h2", {}, "Encoded input"));
    Object.entries(result.encodings).forEach(function (entry) {
      const enc = entry[1];
      const article = el("article", { class: "encoding", "data-encoder": entry[0] });
      const h3 = el("h3", {}, enc.label + " ");
      h3.appendChild(el("span", { class: "muted" }, "· budget " + enc.max_length + " tokens"));
      article.appendChild(h3);
      const side = el("div", { class: "side-by-side" });
      Object.entries(enc.orders).forEach(function (o) { side.appendChild(order(o[0], o[1], enc.layout)); });
      article.appendChild(side);
      encodings.appendChild(article);
    });
    results.appendChild(encodings);
  }

  async function compare() {
    showError("");
    results.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.dataset.api, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request()),
      });
      const data = await response.json();
      if (!response.ok) {
        showError(data.error || ("the server answered " + response.status));
        return;
      }
      render(data);
    } catch (err) {
      showError("the request failed: " + err.message);
    } finally {
      results.removeAttribute("aria-busy");
      results.dataset.done = String(Number(results.dataset.done || 0) + 1);
    }
  }

  form.addEventListener("submit", function (event) {
    const action = event.submitter ? event.submitter.value : "compare";
    event.preventDefault();
    if (action === "add_turn") addTurn();
    else compare();
  });
})();
