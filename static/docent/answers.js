// Docent answers: the sources under an answer, [n] previews, copy buttons. Shared by the
// chat page (chat.js) as window.DocentAnswers; everything inserted here is text, except
// HTML the server rendered and sanitised.
(() => {
  "use strict";
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One of the page's inline SVG icons (templates/assistant/_icons.html).
  function icon(name) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", `#icon-${name}`);
    svg.append(use);
    return svg;
  }

  // An icon, then a label.
  function labelled(tag, cls, name, text) {
    const node = el(tag, cls);
    node.append(icon(name), ` ${text}`);
    if (tag === "button") node.type = "button";
    return node;
  }

  function sourceLink(source, numbered) {
    const link = el("a", "source-link");
    link.href = source.url;
    link.target = "_blank";
    link.rel = "noopener noreferrer nofollow";
    if (numbered) link.append(el("span", "source-numbers", source.numbers.map((n) => `[${n}]`).join("")), " ");
    link.append(el("span", "source-name", source.document));
    if (source.pages.length) link.append(el("span", "source-pages", `, p. ${source.pages.join(", ")}`));
    return link;
  }

  // Same markup as templates/assistant/_sources.html: cited documents, then the rest.
  function renderSources(item, citations) {
    item.querySelector(".sources")?.remove();
    if (!citations.cited.length && !citations.more.length) return;
    const box = el("div", "sources");
    if (citations.cited.length) {
      const cited = el("ol", "cited-sources");
      for (const source of citations.cited) {
        const li = el("li");
        li.append(sourceLink(source, true));
        if (source.section) li.append(" ", el("span", "source-section", `· ${source.section}`));
        if (source.excerpt) li.append(el("p", "excerpt", source.excerpt));
        cited.append(li);
      }
      box.append(el("h3", "sources-head", "Sources"), cited);
    }
    if (citations.more.length) {
      const details = el("details", "more-sources");
      const n = citations.more_passages;
      details.append(el("summary", "", `${n} more passage${n === 1 ? "" : "s"} read`));
      const ul = el("ul");
      for (const source of citations.more) { const li = el("li"); li.append(sourceLink(source, false)); ul.append(li); }
      details.append(ul);
      box.append(details);
    }
    item.querySelector(".message-actions").before(box);
  }

  function closePreview() {
    const open = document.querySelector(".preview");
    if (!open) return;
    open.remove();
    document.querySelector("a.cite[aria-expanded=true]")?.setAttribute("aria-expanded", "false");
  }

  // [n] in an answer opens a preview of the passage in place; its link opens the page.
  function openPreview(link) {
    closePreview();
    const item = link.closest(".message");
    const passages = JSON.parse(item.dataset.passages || "[]");
    const passage = passages.find((p) => String(p.number) === link.dataset.source);
    if (!passage) return false;
    const box = el("div", "preview");
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", `Source ${passage.number}`);
    box.append(el("p", "preview-title", `[${passage.number}] ${passage.document}${passage.pages.length ? `, p. ${passage.pages[0]}` : ""}`));
    if (passage.section) box.append(el("p", "source-section", passage.section));
    box.append(el("p", "excerpt", passage.excerpt));
    const open = labelled("a", "preview-open", "external", "Open the page");
    open.href = passage.url;
    open.target = "_blank";
    open.rel = "noopener noreferrer nofollow";
    box.append(open);
    link.setAttribute("aria-expanded", "true");
    link.after(box);
    const rect = box.getBoundingClientRect();  // keep it on screen on a phone
    if (rect.right > window.innerWidth - 8) box.style.left = `${Math.max(8 - rect.left, window.innerWidth - 8 - rect.right)}px`;
    open.focus();
    return true;
  }
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.querySelector(".preview")) {
      const link = document.querySelector("a.cite[aria-expanded=true]");
      closePreview();
      link?.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".preview, a.cite")) closePreview();
  });

  function codeButtons(root) {
    root.querySelectorAll("pre").forEach((pre) => {
      if (pre.querySelector(".copy-code")) return;
      const button = labelled("button", "ghost copy-code", "copy", "Copy code");
      pre.classList.add("has-copy");
      pre.prepend(button);
    });
  }

  // The Clipboard API needs a secure context (https or localhost); plain http on a LAN
  // falls back to the older copy command.
  async function copy(text, button) {
    let copied = false;
    try { await navigator.clipboard.writeText(text); copied = true; } catch (_) {
      const scratch = el("textarea");
      scratch.value = text;
      scratch.style.position = "fixed";
      scratch.style.opacity = "0";
      document.body.append(scratch);
      scratch.select();
      copied = document.execCommand("copy");
      scratch.remove();
    }
    const label = button.lastChild;
    const before = label.textContent;
    label.textContent = copied ? " Copied" : " Could not copy";
    setTimeout(() => { label.textContent = before; }, 1500);
  }

  window.DocentAnswers = { el, icon, labelled, renderSources, openPreview, closePreview, codeButtons, copy };
})();
