// Docent documents page: multi-file upload with per-file progress, then live ingest status.
(() => {
  "use strict";
  const root = document.getElementById("documents");
  if (!root) return;
  const kb = root.dataset.kb;
  const api = root.dataset.api;
  const csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  const rows = document.getElementById("doc-rows");
  const uploads = document.getElementById("uploads");
  const search = document.getElementById("search");
  const statusFilter = document.getElementById("status-filter");
  const dropzone = document.getElementById("dropzone");
  const picker = document.getElementById("files");
  const switcher = document.getElementById("kb-switch");
  switcher.addEventListener("change", () => {
    window.location = `/kb/${encodeURIComponent(switcher.value)}/documents/`;
  });

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function call(method, path) {
    const response = await fetch(api + path, { method, headers: { "X-CSRFToken": csrf } });
    if (!response.ok && response.status !== 204) {
      let detail = `${response.status}`;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* empty */ }
      throw new Error(detail);
    }
    return response.status === 204 ? null : response.json();
  }

  function upload(file) {
    const item = el("li", "upload");
    const name = el("span", "name", file.name);
    const bar = el("progress");
    bar.max = 100;
    bar.value = 0;
    const note = el("span", "note", "uploading…");
    item.append(name, bar, note);
    uploads.prepend(item);
    const body = new FormData();
    body.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${api}/kbs/${encodeURIComponent(kb)}/documents`);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = Math.round((100 * e.loaded) / e.total); };
    xhr.onload = () => {
      if (xhr.status === 201) {
        const [result] = JSON.parse(xhr.responseText);
        bar.value = 100;
        note.textContent = result.created ? "uploaded" : "already in this knowledge base";
        setTimeout(() => item.remove(), 4000);
        refresh();
      } else {
        let detail = xhr.statusText;
        try { detail = JSON.parse(xhr.responseText).detail || detail; } catch (_) { /* empty */ }
        item.classList.add("failed");
        note.textContent = `upload failed: ${detail}`;
      }
    };
    xhr.onerror = () => { item.classList.add("failed"); note.textContent = "upload failed: network error"; };
    xhr.send(body);
  }

  function addFiles(files) { [...files].forEach(upload); }
  picker.addEventListener("change", () => { addFiles(picker.files); picker.value = ""; });
  dropzone.addEventListener("dragover", (e) => { e.preventDefault(); dropzone.classList.add("over"); });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
  dropzone.addEventListener("drop", (e) => { e.preventDefault(); dropzone.classList.remove("over"); addFiles(e.dataTransfer.files); });

  function statusCell(doc) {
    const cell = el("td", `status ${doc.status}`);
    if (doc.status === "processing" || doc.status === "queued") {
      const bar = el("progress");
      bar.max = 100;
      bar.value = doc.progress;
      cell.append(el("span", "stage", `${doc.stage} ${doc.progress}%`), bar);
    } else {
      cell.append(el("span", "stage", doc.status));
      if (doc.error) cell.append(el("div", "error", doc.error));
    }
    return cell;
  }

  function actionsCell(doc) {
    const cell = el("td", "actions");
    const act = (label, method, path, confirmText) => {
      const button = el("button", "small", label);
      button.type = "button";
      button.addEventListener("click", async () => {
        if (confirmText && !window.confirm(confirmText)) return;
        button.disabled = true;
        try { await call(method, path); } catch (error) { window.alert(error.message); }
        refresh();
      });
      cell.append(button);
    };
    if (doc.status === "failed") act("Retry", "POST", `/documents/${doc.id}/reindex`);
    if (doc.status === "ready") act("Re-index", "POST", `/documents/${doc.id}/reindex`);
    act("Delete", "DELETE", `/documents/${doc.id}`, `Delete ${doc.filename}?`);
    return cell;
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    const params = new URLSearchParams({ q: search.value, status: statusFilter.value });
    let docs = [];
    try { docs = await call("GET", `/kbs/${encodeURIComponent(kb)}/documents?${params}`); } catch (_) { /* retry below */ }
    rows.replaceChildren();
    for (const doc of docs) {
      const row = el("tr");
      row.dataset.id = doc.id;
      row.dataset.status = doc.status;
      const name = el("td", "name");
      const link = el("a", "", doc.filename);
      link.href = doc.url;
      name.append(link);
      if (doc.status === "ready") {
        const chunks = el("a", "small", " chunks");
        chunks.href = `${doc.url}?view=chunks`;
        name.append(chunks);
      }
      const kind = el("td", "", doc.kind || "—");
      const pages = el("td", "", doc.page_count ?? "—");
      const status = statusCell(doc);
      // On a phone each row is a card; the labels stand in for the hidden column headings.
      [[kind, "Type"], [pages, "Pages"], [status, "Status"]].forEach(([cell, label]) => { cell.dataset.label = label; });
      row.append(name, kind, pages, status, actionsCell(doc));
      rows.append(row);
    }
    if (!docs.length) rows.append(Object.assign(el("tr"), { innerHTML: "<td colspan=5 class=muted>No documents.</td>" }));
    const busy = docs.some((d) => d.status === "queued" || d.status === "processing");
    timer = setTimeout(refresh, busy ? 1000 : 5000);
  }
  search.addEventListener("input", () => refresh());
  statusFilter.addEventListener("change", () => refresh());
  refresh();
})();
