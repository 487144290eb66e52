// medrag page: asks /v1/ask and renders the Answer. Everything from the server is placed with textContent
// or as attribute values checked here (links: http(s) only), never parsed as HTML.
"use strict";
(function () {
  const KEY = "medrag-api-key";
  const $ = (id) => document.getElementById(id);
  const storage = window.sessionStorage;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(id, visible) { $(id).hidden = !visible; }

  function headers() {
    const h = { "Content-Type": "application/json" };
    const key = storage.getItem(KEY);
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  // A link for a source: PubMed for a PMID, else its URL when it is http(s); null when there is none.
  function sourceHref(source) {
    if (!source) return null;
    const pmid = source.pmid == null ? "" : String(source.pmid);
    if (/^[0-9]{1,9}$/.test(pmid)) return "https://pubmed.ncbi.nlm.nih.gov/" + pmid + "/";
    if (typeof source.url === "string") {
      try {
        const url = new URL(source.url);
        if (url.protocol === "https:" || url.protocol === "http:") return url.href;
      } catch (e) { /* not a URL */ }
    }
    return null;
  }

  function externalLink(href, text, className) {
    const a = el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, text);
    if (className) a.className = className;
    return a;
  }

  function citationMark(n, byNumber) {
    const source = byNumber.get(n);
    const href = sourceHref(source);
    const label = "[" + n + "]";
    const title = source && source.title ? "Source " + n + ": " + source.title : "Source " + n;
    if (!href) {
      const span = el("span", { class: "cite", title: title }, label);
      return span;
    }
    const a = externalLink(href, label, "cite");
    a.setAttribute("title", title + " (opens in a new tab)");
    a.setAttribute("aria-label", title + ", opens in a new tab");
    return a;
  }

  // Text with [n] markers: the markers become citation links, the rest stays text.
  function appendMarked(parent, text, byNumber) {
    const parts = String(text).split(/\[(\d+)\]/);
    parts.forEach((part, i) => {
      if (i % 2 === 1) parent.appendChild(citationMark(Number(part), byNumber));
      else if (part) parent.appendChild(document.createTextNode(part));
    });
  }

  function setBusy(busy) {
    $("ask-button").disabled = busy;
    $("answer").setAttribute("aria-busy", busy ? "true" : "false");
    show("progress", busy);
  }

  function showError(message) {
    $("error").textContent = message;
    show("error", Boolean(message));
  }

  function showKeyForm(visible, message) {
    show("key-section", visible);
    $("key-error").textContent = message || "";
    show("key-error", Boolean(message));
    show("forget-key", Boolean(storage.getItem(KEY)));
    if (visible) $("key-input").focus();
  }

  async function probe() {
    // Does this server want a key? /v1/models answers 401 when it does.
    if (storage.getItem(KEY)) { showKeyForm(false); return; }
    try {
      const response = await fetch("/v1/models", { headers: headers() });
      showKeyForm(response.status === 401);
    } catch (e) {
      showError("Cannot reach the medrag server.");
    }
  }

  async function useKey(event) {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    storage.setItem(KEY, key);
    $("key-input").value = "";
    const response = await fetch("/v1/models", { headers: headers() }).catch(() => null);
    if (!response || response.status === 401) {
      storage.removeItem(KEY);
      showKeyForm(true, "That key was not accepted.");
      return;
    }
    showKeyForm(false);
    $("question").focus();
  }

  function clearAnswer() {
    for (const id of ["notices", "answer-body", "sources"]) $(id).replaceChildren();
    const abstained = $("abstained");
    while (abstained.children.length > 1) abstained.removeChild(abstained.lastChild);
    $("emergency").replaceChildren();
    show("emergency", false);
    show("answer", false);
    show("abstained", false);
    show("sources-block", false);
  }

  function paragraphs(answer) {
    // The answer's typed parts; older servers send only the text (notices, body, disclaimer).
    if (typeof answer.body === "string") {
      return { body: answer.body.split(/\n\n/).filter(Boolean), disclaimer: answer.disclaimer || "" };
    }
    const parts = String(answer.text || "").split(/\n\n/);
    const notices = new Set(answer.notices || []);
    const disclaimer = parts.length > 1 ? parts.pop() : "";
    return { body: parts.filter((p) => !notices.has(p)), disclaimer: disclaimer };
  }

  function renderSentences(parent, sentences, byNumber) {
    // Each sentence says where it stands (layout): a new line, a list item, or the same line; older servers
    // send no layout, and their sentences make one paragraph.
    let block = null;
    let list = null;
    for (const s of sentences) {
      const layout = s.layout || "same";
      if (layout === "item") {
        if (!list) {
          list = el("ul", { class: "answer-list" });
          parent.appendChild(list);
        }
        block = el("li");
        list.appendChild(block);
      } else if (layout === "line" || !block) {
        list = null;
        block = el("p");
        parent.appendChild(block);
      }
      const span = el("span", { class: "sentence" });
      appendMarked(span, s.text, byNumber);
      for (const n of s.citations || []) {
        span.appendChild(document.createTextNode(" "));
        span.appendChild(citationMark(n, byNumber));
      }
      const support = typeof s.support === "number" ? s.support.toFixed(2) : "?";
      const mark = el("span", {
        class: "support " + (s.supported ? "ok" : "low"),
        title: (s.supported ? "Supported" : "Weakly supported") + " by the cited passage (similarity " + support + ")",
      }, s.supported ? "\u2713" : "\u26a0");
      mark.appendChild(el("span", { class: "sr-only" },
        s.supported ? " supported by its source" : " weakly supported: check the source"));
      span.appendChild(mark);
      block.appendChild(span);
      block.appendChild(document.createTextNode(" "));
    }
  }

  function renderSource(citation) {
    const li = el("li", { id: "source-" + citation.n, value: String(citation.n) });
    const href = sourceHref(citation);
    const title = citation.title || "(untitled)";
    li.appendChild(href ? externalLink(href, title) : el("span", {}, title));
    const venue = [citation.journal || citation.source, citation.year ? "(" + citation.year + ")" : null]
      .filter(Boolean).join(" ");
    const details = [venue, citation.pmid ? "PMID " + citation.pmid : null].filter(Boolean).join(". ");
    if (details) li.appendChild(el("span", { class: "meta" }, ". " + details));
    if (citation.text) {
      const text = String(citation.text);
      li.appendChild(el("blockquote", { class: "excerpt" }, text.length > 700 ? text.slice(0, 699) + "\u2026" : text));
    }
    return li;
  }

  function render(answer) {
    clearAnswer();
    const citations = Array.isArray(answer.citations) ? answer.citations : [];
    const byNumber = new Map(citations.map((c) => [c.n, c]));
    const notices = Array.isArray(answer.notices) ? answer.notices : [];
    let focus = $("answer");
    if (answer.emergency) {
      $("emergency").textContent = notices[0] || "This may be an emergency: call your local emergency number now.";
      show("emergency", true);
      focus = $("emergency");
    }
    for (const notice of answer.emergency ? notices.slice(1) : notices) {
      $("notices").appendChild(el("p", { class: "notice" }, notice));
    }
    const parts = paragraphs(answer);
    if (answer.abstained) {
      const box = $("abstained");
      for (const p of parts.body) box.appendChild(el("p", {}, p));
      const closest = Array.isArray(answer.retrieved) ? answer.retrieved.slice(0, 3) : [];
      if (closest.length) {
        box.appendChild(el("p", {}, "The closest sources (they do not answer the question):"));
        const list = el("ul");
        for (const r of closest) {
          const li = el("li");
          const href = sourceHref(r);
          const title = r.title || r.doc_id || "(untitled)";
          li.appendChild(href ? externalLink(href, title) : el("span", {}, title));
          list.appendChild(li);
        }
        box.appendChild(list);
      }
      show("abstained", true);
    } else if (Array.isArray(answer.sentences) && answer.sentences.length) {
      renderSentences($("answer-body"), answer.sentences, byNumber);
    } else {
      for (const p of parts.body) {
        const para = el("p");
        appendMarked(para, p, byNumber);
        $("answer-body").appendChild(para);
      }
    }
    for (const c of citations) $("sources").appendChild(renderSource(c));
    show("sources-block", citations.length > 0);
    $("generator").textContent = answer.generator ? "Answered by: " + answer.generator : "";
    $("answer-disclaimer").textContent = parts.disclaimer;
    if (typeof answer.language === "string" && /^[a-z]{2,3}(-[A-Za-z0-9]+)*$/.test(answer.language)) {
      $("answer").setAttribute("lang", answer.language);
    }
    show("answer", true);
    focus.focus();
  }

  async function ask(event) {
    event.preventDefault();
    const question = $("question").value.trim();
    if (!question) { showError("Type a question first."); $("question").focus(); return; }
    const body = { question: question };
    const context = $("context").value.trim();
    if (context) body.context = context;
    showError("");
    clearAnswer();
    setBusy(true);
    try {
      const response = await fetch("/v1/ask", { method: "POST", headers: headers(), body: JSON.stringify(body) });
      const data = await response.json().catch(() => null);
      if (response.status === 401) {
        storage.removeItem(KEY);
        showKeyForm(true, "Enter a valid API key to ask.");
        return;
      }
      if (!response.ok) {
        showError(data && data.error && data.error.message ? data.error.message : "The server answered " + response.status + ".");
        return;
      }
      render(data);
    } catch (e) {
      showError("Cannot reach the medrag server.");
    } finally {
      setBusy(false);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", useKey);
    $("ask-form").addEventListener("submit", ask);
    $("question").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("ask-form").requestSubmit();
      }
    });
    $("forget-key").addEventListener("click", () => {
      storage.removeItem(KEY);
      showKeyForm(true);
    });
    probe();
  });
})();
