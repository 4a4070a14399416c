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
  const notice = document.getElementById("attach-notice");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const MAX_IMAGES = 8;
  let files = [];
  let controller = null;

  const { el, labelled, renderSources, openPreview, closePreview, codeButtons, copy } = window.DocentAnswers;

  // --- attachments ---------------------------------------------------------------------
  function addFiles(candidates) {
    const notes = [];
    let extra = 0;
    for (const file of candidates) {
      if (!file.type.startsWith("image/")) {
        notes.push(`${file.name || "That file"} is not an image: only screenshots can be attached here` +
          (chat.dataset.documentsUrl ? "; add documents on the Documents page." : "."));
        continue;
      }
      if (files.length >= MAX_IMAGES) { extra += 1; continue; }
      files.push(file);
    }
    if (extra) notes.push(`At most ${MAX_IMAGES} screenshots per question: ${extra} ${extra === 1 ? "was" : "were"} left out.`);
    notice.textContent = notes.join(" ");
    notice.hidden = !notes.length;
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
      remove.setAttribute("aria-label", `Remove ${file.name || "screenshot"}`);
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
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); form.requestSubmit(); }
  });
  stop.addEventListener("click", () => controller && controller.abort());

  // Keyboard shortcuts (as in ChatGPT): Esc stops, Shift+Esc focuses the composer,
  // Ctrl/Cmd+Shift+O starts a new conversation.
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && event.shiftKey) { event.preventDefault(); input.focus(); }
    else if (event.key === "Escape" && controller && !document.querySelector(".preview")) { controller.abort(); }
    else if ((event.ctrlKey || event.metaKey) && event.shiftKey && event.key.toLowerCase() === "o") {
      event.preventDefault();
      window.location.href = `${window.location.pathname}?kb=${encodeURIComponent(chat.dataset.kb)}`;
    }
  });
  document.querySelectorAll(".starter").forEach((button) => button.addEventListener("click", () => {
    input.value = button.textContent;
    form.requestSubmit();
  }));

  // --- actions on answers and questions ---------------------------------------------------
  function actions(item, data) {
    const bar = el("div", "message-actions");
    if (data.content) {
      const copyButton = labelled("button", "ghost", "copy", "Copy");
      copyButton.dataset.action = "copy";
      bar.append(copyButton);
    }
    if (data.status !== "error" || data.stopped) {
      const again = labelled("button", "ghost regenerate", "redo", "Regenerate");
      again.dataset.action = "regenerate";
      bar.append(again);
    }
    if (data.status === "complete") {
      const rate = el("span", "feedback-bar");
      rate.dataset.message = data.message_id;
      for (const [rating, icon, label] of [[1, "up", "Helpful"], [-1, "down", "Not helpful"]]) {
        const button = labelled("button", "ghost", icon, label);
        button.dataset.rating = rating;
        rate.append(button);
      }
      bar.append(rate);
    }
    item.querySelector(".message-actions")?.remove();
    item.append(bar);
  }

  list.querySelectorAll(".answer").forEach(codeButtons);

  list.addEventListener("click", async (event) => {
    const cite = event.target.closest("a.cite");
    if (cite && !event.ctrlKey && !event.metaKey && !event.shiftKey && openPreview(cite)) { event.preventDefault(); return; }
    const codeButton = event.target.closest(".copy-code");
    if (codeButton) {
      const code = codeButton.parentElement.querySelector("code") || codeButton.parentElement;
      return copy(code.textContent, codeButton);
    }
    const button = event.target.closest("button[data-action], .feedback-bar button");
    if (!button || controller) return;
    const item = button.closest(".message");
    if (button.dataset.action === "copy") {
      const answer = item.querySelector(".answer").cloneNode(true);
      answer.querySelectorAll(".copy-code").forEach((b) => b.remove());
      return copy(answer.innerText.trim(), button);
    }
    if (button.dataset.action === "regenerate") {
      const question = item.previousElementSibling;
      return ask({ resendFrom: question, text: "", images: [] });
    }
    if (button.dataset.action === "edit") return editQuestion(item);
    const bar = button.parentElement;
    const body = new FormData();
    body.append("rating", button.dataset.rating);
    if (button.dataset.rating === "-1") body.append("comment", window.prompt("What was wrong with this answer? (optional)") || "");
    const url = chat.dataset.feedbackUrl.replace("/0/", `/${bar.dataset.message}/`);
    const response = await fetch(url, { method: "POST", body, headers: { "X-CSRFToken": csrf } });
    if (response.ok) bar.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
  });

  // Edit and resend: the question becomes a text box; sending replaces it and what followed.
  function editQuestion(item) {
    const bubble = item.querySelector(".bubble");
    const editor = el("form", "edit-question");
    const box = el("textarea");
    box.value = bubble ? bubble.innerText : "";
    box.rows = 3;
    box.setAttribute("aria-label", "Edit your question");
    const save = el("button", "", "Send");
    save.type = "submit";
    const cancel = el("button", "ghost", "Cancel");
    cancel.type = "button";
    editor.append(box, save, cancel);
    item.querySelector(".message-actions").hidden = true;
    if (bubble) bubble.hidden = true;
    item.prepend(editor);
    box.focus();
    const close = () => { editor.remove(); if (bubble) bubble.hidden = false; item.querySelector(".message-actions").hidden = false; };
    cancel.addEventListener("click", close);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.stopPropagation(); close(); }
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); editor.requestSubmit(); }
    });
    editor.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!box.value.trim()) return;
      ask({ resendFrom: item, text: box.value.trim(), images: [] });
    });
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

  function questionItem(text, images) {
    const item = el("li", "message user");
    if (text) item.append(el("div", "bubble", text));
    if (images.length) {
      const thumbs = el("div", "thumbs");
      images.forEach((file, i) => {
        const img = el("img", "thumb");
        img.src = URL.createObjectURL(file);
        img.alt = `Screenshot ${i + 1} sent with this question`;
        thumbs.append(img);
      });
      item.append(thumbs);
    }
    const bar = el("div", "message-actions");
    const edit = labelled("button", "ghost", "edit", "Edit");
    edit.dataset.action = "edit";
    bar.append(edit);
    item.append(bar);
    return item;
  }

  function showError(item, message) {
    item.querySelector(".error-box")?.remove();
    const box = el("div", "error-box");
    box.setAttribute("role", "alert");
    box.append(el("p", "error", message));
    const retry = labelled("button", "ghost", "redo", "Retry");
    retry.dataset.action = "regenerate";
    box.append(retry);
    item.querySelector(".message-actions").before(box);
  }

  // After Stop, show the answer exactly as the server kept it (it may hold a few more words
  // than the last rendering the page received).
  async function showSaved(item, messageId) {
    for (let attempt = 0; attempt < 10 && messageId; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const response = await fetch(`/messages/${messageId}`, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const saved = await response.json();
      if (saved.status === "streaming") continue;
      const bubble = item.querySelector(".answer");
      bubble.innerHTML = saved.html;  // sanitised server-side (nh3)
      codeButtons(bubble);
      item.dataset.passages = saved.passages_json;
      renderSources(item, saved.citations);
      return;
    }
  }

  async function ask({ text, images, resendFrom }) {
    if (controller) return;
    closePreview();
    document.getElementById("welcome")?.remove();
    let userItem;
    if (resendFrom) {  // what followed the question goes; the question is asked again
      while (resendFrom.nextElementSibling) resendFrom.nextElementSibling.remove();
      if (text) { userItem = questionItem(text, []); resendFrom.replaceWith(userItem); } else userItem = resendFrom;
    } else {
      userItem = questionItem(text, images);
      list.append(userItem);
    }
    const answerItem = el("li", "message assistant streaming");
    const status = el("p", "status", "Searching the knowledge base…");
    status.setAttribute("role", "status");
    const bubble = el("div", "bubble answer");
    const reasoning = el("details", "reasoning");
    reasoning.hidden = true;
    reasoning.append(el("summary", "", "Reasoning"), el("pre"));
    answerItem.append(status, reasoning, bubble, el("div", "message-actions"));
    list.append(answerItem);
    answerItem.scrollIntoView({ block: "end" });

    const body = new FormData();
    body.append("kb", chat.dataset.kb);
    body.append("question", text);
    body.append("conversation", chat.dataset.conversation || "");
    if (resendFrom) body.append("resend_from", resendFrom.dataset.message);
    images.forEach((file, i) => body.append("images", file, file.name || `screenshot-${i + 1}.png`));
    // "Ask only these documents" (docfilter.js keeps the chosen ones as checked boxes).
    form.querySelectorAll("#doc-filter-list input:checked").forEach((box) => body.append("documents", box.value));
    controller = new AbortController();
    send.hidden = true;
    stop.hidden = false;
    let done = null;
    let messageId = null;
    let content = false;
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
          userItem.dataset.message = data.question_id;
          answerItem.dataset.message = messageId = data.message_id;
          const url = new URL(window.location.href);
          url.searchParams.set("kb", data.kb);
          url.searchParams.set("c", data.id);
          window.history.replaceState(null, "", url);
          document.dispatchEvent(new CustomEvent("docent:conversation", { detail: { id: data.id, title: data.title, kb: data.kb } }));
        } else if (kind === "status") {
          status.textContent = data.message || (data.stage === "generating" ? "Writing the answer…" : `${data.stage[0].toUpperCase()}${data.stage.slice(1)}…`);
        } else if (kind === "sources") {
          answerItem.dataset.passages = JSON.stringify(data.sources);
        } else if (kind === "citations") {
          renderSources(answerItem, data);
        } else if (kind === "reasoning") {
          reasoning.hidden = false;
          reasoning.querySelector("pre").textContent += data.text;
        } else if (kind === "delta") {
          content = true;
        } else if (kind === "html") {
          // The server renders the Markdown as it grows, so the answer never reflows from
          // raw text at the end; sanitised server-side (nh3).
          status.hidden = true;
          bubble.innerHTML = data.html;
        } else if (kind === "error") {
          showError(answerItem, data.message);
        } else if (kind === "done") {
          done = data;
        }
      });
    } catch (error) {
      if (error.name === "AbortError") {
        answerItem.querySelector(".message-actions").before(el("p", "stopped", "Stopped before the answer was finished."));
        done = { status: "stopped", stopped: true, message_id: messageId };
        await showSaved(answerItem, messageId);
      } else showError(answerItem, error.message || "The connection failed.");
    } finally {
      status.hidden = true;
      answerItem.classList.remove("streaming");
      if (!bubble.innerHTML) bubble.remove();
      codeButtons(answerItem);
      const finished = done || { status: "error" };
      if (finished.retrieval_only) answerItem.classList.add("retrieval-only");
      answerItem.dataset.status = finished.status;
      actions(answerItem, { ...finished, content: content || Boolean(answerItem.querySelector(".answer")) });
      if (!finished.stopped && finished.status === "error" && !answerItem.querySelector(".error-box")) showError(answerItem, "The answer did not finish.");
      controller = null;
      send.hidden = false;
      stop.hidden = true;
      input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if ((!text && !files.length) || controller) return;
    const images = files;
    input.value = "";
    files = [];
    notice.hidden = true;
    renderTray();
    ask({ text, images });
  });
})();
