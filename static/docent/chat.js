// Docent chat page: streams answers over SSE (fetch + ReadableStream), no framework.
// All HTML inserted here was rendered and sanitised by the server; everything else is text.
(() => {
  "use strict";
  const picker = document.getElementById("kb-select"); // no inline handlers: the CSP forbids them
  if (picker) picker.addEventListener("change", () => picker.form.submit());
  // Phones: the sidebar opens as a drawer from the "Conversations" button; Escape closes it.
  const menu = document.getElementById("menu-toggle");
  const sidebar = document.getElementById("sidebar");
  function drawer(open) {
    sidebar.classList.toggle("open", open);
    menu.setAttribute("aria-expanded", String(open));
    if (open) sidebar.querySelector("select, a, button")?.focus();
  }
  if (menu && sidebar) {
    menu.addEventListener("click", (event) => { event.stopPropagation(); drawer(!sidebar.classList.contains("open")); });
    document.getElementById("drawer-close").addEventListener("click", () => { drawer(false); menu.focus(); });
    document.addEventListener("click", (event) => {  // a tap beside the drawer closes it
      if (sidebar.classList.contains("open") && !sidebar.contains(event.target)) drawer(false);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && sidebar.classList.contains("open")) { drawer(false); menu.focus(); }
    });
  }
  const chat = document.getElementById("chat");
  const form = document.getElementById("composer");
  if (!chat || !form) return;
  const list = document.getElementById("messages");
  const input = document.getElementById("question");
  const send = document.getElementById("send");
  const stop = document.getElementById("stop");
  const fileInput = document.getElementById("file-input");
  const tray = document.getElementById("attachments");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  let files = [];
  let controller = null;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One of the page's inline SVG icons (templates/assistant/_icons.html), then a label.
  function labelled(tag, cls, icon, text) {
    const node = el(tag, cls);
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", `#icon-${icon}`);
    svg.append(use);
    node.append(svg, ` ${text}`);
    return node;
  }

  function addFiles(candidates) {
    for (const file of candidates) {
      if (!file.type.startsWith("image/")) continue;
      if (files.length >= 8) break;
      files.push(file);
    }
    renderTray();
  }

  function renderTray() {
    tray.replaceChildren();
    files.forEach((file, index) => {
      const chip = el("div", "chip");
      const img = el("img");
      img.alt = file.name || "screenshot";
      img.src = URL.createObjectURL(file);
      const remove = el("button", "remove", "×");
      remove.type = "button";
      remove.title = "Remove";
      remove.addEventListener("click", () => { files.splice(index, 1); renderTray(); });
      chip.append(img, remove);
      tray.append(chip);
    });
  }

  document.addEventListener("paste", (event) => {
    const items = [...(event.clipboardData?.items || [])].filter((i) => i.kind === "file");
    if (items.length) {
      addFiles(items.map((i) => i.getAsFile()).filter(Boolean));
      event.preventDefault();
    }
  });
  chat.addEventListener("dragover", (event) => { event.preventDefault(); chat.classList.add("dropping"); });
  chat.addEventListener("dragleave", () => chat.classList.remove("dropping"));
  chat.addEventListener("drop", (event) => {
    event.preventDefault();
    chat.classList.remove("dropping");
    addFiles([...event.dataTransfer.files]);
  });
  document.getElementById("attach").addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => { addFiles([...fileInput.files]); fileInput.value = ""; });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  stop.addEventListener("click", () => controller && controller.abort());

  function feedbackBar(messageId) {
    const bar = el("div", "feedback-bar");
    bar.dataset.message = messageId;
    for (const [rating, icon, label] of [[1, "up", "Helpful"], [-1, "down", "Not helpful"]]) {
      const button = labelled("button", "", icon, label);
      button.type = "button";
      button.dataset.rating = rating;
      bar.append(button);
    }
    return bar;
  }

  list.addEventListener("click", async (event) => {
    const button = event.target.closest(".feedback-bar button");
    if (!button) return;
    const bar = button.parentElement;
    const body = new FormData();
    body.append("rating", button.dataset.rating);
    if (button.dataset.rating === "-1") body.append("comment", window.prompt("What was wrong with this answer? (optional)") || "");
    const url = chat.dataset.feedbackUrl.replace("/0/", `/${bar.dataset.message}/`);
    const response = await fetch(url, { method: "POST", body, headers: { "X-CSRFToken": csrf } });
    if (response.ok) bar.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
  });

  function renderSources(container, sources) {
    container.replaceChildren();
    for (const source of sources) {
      const item = el("li");
      item.value = source.number;
      const link = el("a", "", source.document + (source.pages.length ? `, p. ${source.pages[0]}` : ""));
      link.href = source.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer nofollow";
      item.append(link);
      container.append(item);
    }
  }

  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let kind = "message";
        const data = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (data.length) onEvent(kind, JSON.parse(data.join("\n")));
      }
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || controller) return;
    const userItem = el("li", "message user");
    userItem.append(el("div", "bubble", question));
    files.forEach(() => userItem.append(labelled("div", "attachment", "image", "Screenshot")));
    const answerItem = el("li", "message assistant streaming");
    const status = el("p", "status", "Searching the knowledge base…");
    const bubble = el("div", "bubble answer");
    const reasoning = el("details", "reasoning");
    reasoning.hidden = true;
    reasoning.append(el("summary", "", "Reasoning"), el("pre"));
    const errorBox = el("p", "error");
    errorBox.hidden = true;
    const sourceList = el("ol", "sources");
    answerItem.append(status, reasoning, bubble, errorBox, sourceList);
    list.append(userItem, answerItem);
    answerItem.scrollIntoView({ block: "end" });

    const body = new FormData();
    body.append("kb", chat.dataset.kb);
    body.append("question", question);
    body.append("conversation", chat.dataset.conversation || "");
    files.forEach((file, i) => body.append("images", file, file.name || `screenshot-${i + 1}.png`));
    input.value = "";
    files = [];
    renderTray();
    controller = new AbortController();
    send.hidden = true;
    stop.hidden = false;
    let raw = "";
    try {
      const response = await fetch(chat.dataset.streamUrl, {
        method: "POST", body, signal: controller.signal,
        headers: { "X-CSRFToken": csrf, Accept: "text/event-stream" },
      });
      if (!response.ok) {
        let message = `The server answered ${response.status}.`;
        try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
        throw new Error(message);
      }
      await readEvents(response, (kind, data) => {
        if (kind === "conversation") {
          chat.dataset.conversation = data.id;
          const url = new URL(window.location.href);
          url.searchParams.set("kb", data.kb);
          url.searchParams.set("c", data.id);
          window.history.replaceState(null, "", url);
        } else if (kind === "status") {
          status.textContent = data.message || (data.stage === "generating" ? "Writing the answer…" : `${data.stage[0].toUpperCase()}${data.stage.slice(1)}…`);
        } else if (kind === "sources") {
          renderSources(sourceList, data.sources);
        } else if (kind === "reasoning") {
          reasoning.hidden = false;
          reasoning.querySelector("pre").textContent += data.text;
        } else if (kind === "delta") {
          raw += data.text;
          status.hidden = true;
          bubble.textContent = raw;
        } else if (kind === "html") {
          bubble.innerHTML = data.html; // sanitised server-side (nh3)
        } else if (kind === "error") {
          errorBox.hidden = false;
          errorBox.textContent = data.message;
        } else if (kind === "done") {
          status.hidden = true;
          if (data.retrieval_only) answerItem.classList.add("retrieval-only");
          if (data.status !== "error") answerItem.append(feedbackBar(data.message_id));  // nothing to rate
        }
      });
    } catch (error) {
      status.hidden = true;
      errorBox.hidden = false;
      errorBox.textContent = error.name === "AbortError" ? "Stopped." : (error.message || "The connection failed.");
    } finally {
      answerItem.classList.remove("streaming");
      controller = null;
      send.hidden = false;
      stop.hidden = true;
      input.focus();
    }
  });
})();
