// Docent documents page: one page of a knowledge base's documents at a time (searched, filtered
// and sorted by the server, the view kept in the URL), live ingest status, and for staff the
// upload tray (checked before sending, with progress and Cancel) and bulk actions.
(() => {
  "use strict";
  const root = document.getElementById("documents");
  if (!root) return;
  const kb = root.dataset.kb;
  const api = root.dataset.api;
  const manage = root.dataset.manage === "1";
  const csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  const $ = (id) => document.getElementById(id);
  const rows = $("doc-rows");
  const message = $("doc-message");
  const search = $("search");
  const statusFilter = $("status-filter");
  const typeFilter = $("type-filter");
  const sortSelect = $("sort");
  const PAGE_SIZE = 50;
  const COLUMNS = manage ? 10 : 8;
  const switcher = $("kb-switch");
  if (switcher) {
    switcher.addEventListener("change", () => {
      window.location = `/kb/${encodeURIComponent(switcher.value)}/documents/`;
    });
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  /** Bytes as people read them: "0.8 KB", "1.2 MB", "110 MB" (1 KB = 1024 bytes). */
  function humanBytes(size) {
    let value = size;
    const units = ["bytes", "KB", "MB", "GB"];
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    if (unit === 0) return `${size} bytes`;
    const shown = value < 10 ? value.toFixed(1).replace(/\.0$/, "") : Math.round(value).toString();
    return `${shown} ${units[unit]}`;
  }

  function ordinal(n) {
    const tens = n % 100;
    const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th");
    return `${n}${suffix}`;
  }

  function humanSeconds(seconds) {
    if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s`;
    if (seconds < 3600) return `about ${Math.round(seconds / 60)} min`;
    return `about ${Math.round(seconds / 3600)} h`;
  }

  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  function when(iso) {
    const date = new Date(iso);
    const seconds = (date.getTime() - Date.now()) / 1000;
    const abs = Math.abs(seconds);
    if (abs < 60) return "just now";
    if (abs < 3600) return relative.format(Math.round(seconds / 60), "minute");
    if (abs < 86400) return relative.format(Math.round(seconds / 3600), "hour");
    if (abs < 7 * 86400) return relative.format(Math.round(seconds / 86400), "day");
    return date.toLocaleDateString();
  }

  function say(text, isError = false) {
    message.hidden = !text;
    message.textContent = text || "";
    message.classList.toggle("error", isError);
  }

  async function call(method, path, body) {
    const headers = { "X-CSRFToken": csrf };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(api + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      let detail = response.status === 404 ? "Not found (deleted already?)." : `The server answered ${response.status}.`;
      try {
        const data = await response.json();
        if (typeof data.detail === "string") detail = data.detail;
      } catch (_) { /* not JSON: keep the status */ }
      throw new Error(detail);
    }
    return response.status === 204 ? null : response.json();
  }

  // -- the view, kept in the URL so reload and Back show the same thing ----------------------
  const state = { q: "", status: "", type: "", sort: "-uploaded", page: 1 };
  function readUrl() {
    const params = new URLSearchParams(window.location.search);
    state.q = params.get("q") || "";
    state.status = params.get("status") || "";
    state.type = params.get("type") || "";
    state.sort = params.get("sort") || "-uploaded";
    state.page = Math.max(1, parseInt(params.get("page") || "1", 10) || 1);
    search.value = state.q;
    statusFilter.value = state.status;
    typeFilter.value = state.type;
    sortSelect.value = state.sort;
    if (sortSelect.value !== state.sort) sortSelect.value = "";
  }
  function writeUrl(push) {
    const params = new URLSearchParams();
    if (state.q) params.set("q", state.q);
    if (state.status) params.set("status", state.status);
    if (state.type) params.set("type", state.type);
    if (state.sort !== "-uploaded") params.set("sort", state.sort);
    if (state.page > 1) params.set("page", String(state.page));
    const query = params.toString();
    const url = `${window.location.pathname}${query ? `?${query}` : ""}`;
    if (url !== window.location.pathname + window.location.search) {
      window.history[push ? "pushState" : "replaceState"](null, "", url);
    }
  }
  function change(update, push = true) {
    Object.assign(state, update);
    selected.clear();
    lastDrawn = "";
    writeUrl(push);
    refresh();
  }
  let typing = null;
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => change({ q: search.value.trim(), page: 1 }, false), 250);
  });
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); change({ q: search.value.trim(), page: 1 }); });
  statusFilter.addEventListener("change", () => change({ status: statusFilter.value, page: 1 }));
  typeFilter.addEventListener("change", () => change({ type: typeFilter.value, page: 1 }));
  sortSelect.addEventListener("change", () => change({ sort: sortSelect.value || "-uploaded", page: 1 }));
  root.querySelectorAll("th[data-sort]").forEach((th) => {
    const key = th.dataset.sort;
    const button = el("button", "sort-head", th.textContent);
    button.type = "button";
    th.replaceChildren(button);
    button.addEventListener("click", () => {
      const descendingFirst = key === "uploaded" || key === "size" || key === "pages" || key === "chunks";
      let next = descendingFirst ? `-${key}` : key;
      if (state.sort === next) next = next.startsWith("-") ? key : `-${key}`;
      change({ sort: next, page: 1 });
    });
  });
  $("page-prev").addEventListener("click", () => change({ page: Math.max(1, state.page - 1) }));
  $("page-next").addEventListener("click", () => change({ page: state.page + 1 }));
  window.addEventListener("popstate", () => { readUrl(); selected.clear(); lastDrawn = ""; refresh(); });

  // -- rows --------------------------------------------------------------------------------
  const selected = new Set();
  const KINDS = Object.fromEntries([...typeFilter.options].filter((o) => o.value).map((o) => [o.value, o.text]));

  function statusCell(doc) {
    const cell = el("td", `status ${doc.status}`);
    if (doc.status === "queued") {
      const parts = [];
      if (doc.queue_position != null) parts.push(`${ordinal(doc.queue_position)} in queue`);
      if (doc.eta_seconds != null) parts.push(humanSeconds(doc.eta_seconds));
      cell.append(el("span", "stage", parts.length ? parts.join(" · ") : "Queued"));
    } else if (doc.status === "processing") {
      const detail = doc.progress_detail || ({ extracting: "Reading", ocr: "Reading text in images", embedding: "Indexing" }[doc.stage] || "Processing");
      cell.append(el("span", "stage", `${detail} · ${doc.progress}%`));
      const bar = el("progress");
      bar.max = 100;
      bar.value = doc.progress;
      bar.setAttribute("aria-label", `${doc.filename}: ${doc.progress}%`);
      cell.append(bar);
    } else {
      cell.append(el("span", "stage", doc.status === "ready" ? "Ready" : "Failed"));
      if (doc.error) cell.append(el("div", "error", doc.error));
    }
    return cell;
  }

  function actionsCell(doc) {
    const cell = el("td", "actions");
    const act = (label, method, path, confirmText, cls) => {
      const button = el("button", `small${cls ? ` ${cls}` : ""}`, label);
      button.type = "button";
      button.addEventListener("click", async () => {
        if (confirmText && !window.confirm(confirmText)) return;
        button.disabled = true;
        try {
          await call(method, path);
          say("");
        } catch (error) {
          say(`${label} ${doc.filename}: ${error.message}`, true);
        }
        lastDrawn = ""; // redraw, so a button that failed is usable again
        refresh();
      });
      cell.append(button);
    };
    const busy = doc.status === "queued" || doc.status === "processing";
    const retryable = doc.retryable ?? (doc.status === "failed");
    if (busy) act("Cancel", "POST", `/documents/${doc.id}/cancel`);
    if (doc.status === "failed" && retryable) act("Retry", "POST", `/documents/${doc.id}/reindex`);
    if (doc.status === "ready") act("Re-index", "POST", `/documents/${doc.id}/reindex`);
    act("Delete", "DELETE", `/documents/${doc.id}`, `Delete ${doc.filename}?`, "danger");
    return cell;
  }

  function labelled(cell, label) { cell.dataset.label = label; return cell; }

  function docRow(doc) {
    const row = el("tr");
    row.dataset.id = doc.id;
    row.dataset.status = doc.status;
    if (manage) {
      const pick = el("td", "select");
      const box = el("input");
      box.type = "checkbox";
      box.checked = selected.has(doc.id);
      box.setAttribute("aria-label", `Select ${doc.filename}`);
      box.addEventListener("change", () => {
        if (box.checked) selected.add(doc.id); else selected.delete(doc.id);
        updateBulk();
      });
      pick.append(box);
      row.append(pick);
    }
    const name = el("td", "name");
    const link = el("a", "", doc.filename);
    link.href = doc.url;
    name.append(link);
    if (manage && doc.status === "ready") {
      const chunks = el("a", "small inspect", "chunks");
      chunks.href = `${doc.url}?view=chunks`;
      name.append(" ", chunks);
    }
    const uploaded = labelled(el("td", "meta when", when(doc.created_at)), "Uploaded");
    uploaded.title = new Date(doc.created_at).toLocaleString();
    row.append(
      name,
      labelled(el("td", "meta", KINDS[doc.kind] || "—"), "Type"),
      labelled(el("td", "meta num", doc.size_bytes ? humanBytes(doc.size_bytes) : "—"), "Size"),
      labelled(el("td", "meta num", doc.page_count ?? "—"), "Pages"),
      labelled(el("td", "meta num", doc.status === "ready" ? doc.chunk_count : "—"), "Chunks"),
      labelled(el("td", "meta", doc.uploaded_by || "—"), "Uploaded by"),
      uploaded,
      labelled(statusCell(doc), "Status"),
    );
    if (manage) row.append(actionsCell(doc));
    return row;
  }

  function showHeadings() {
    root.querySelectorAll("th[data-sort]").forEach((th) => {
      const key = th.dataset.sort;
      const value = state.sort === key ? "ascending" : state.sort === `-${key}` ? "descending" : "none";
      th.setAttribute("aria-sort", value);
    });
  }

  let timer = null;
  let generation = 0;
  let lastPage = [];
  let lastDrawn = "";
  async function refresh() {
    clearTimeout(timer);
    const mine = ++generation;
    const params = new URLSearchParams({
      q: state.q, status: state.status, kind: state.type, sort: state.sort,
      limit: String(PAGE_SIZE), offset: String((state.page - 1) * PAGE_SIZE),
    });
    let page;
    try {
      page = await call("GET", `/kbs/${encodeURIComponent(kb)}/documents?${params}`);
    } catch (error) {
      if (mine === generation) {
        say(`Could not load the documents: ${error.message} Trying again…`, true);
        timer = setTimeout(refresh, 5000);
      }
      return;
    }
    if (mine !== generation) return; // a newer view was asked for meanwhile
    if (message.classList.contains("error") && message.textContent.startsWith("Could not load")) say("");
    const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
    if (state.page > pages && page.total) { change({ page: pages }, false); return; }
    lastPage = page.items;
    // Unchanged rows are left alone, so a poll never takes the focus off a checkbox or button.
    const drawn = JSON.stringify(page.items.map((d) => [d, when(d.created_at)]));
    if (drawn !== lastDrawn) {
      lastDrawn = drawn;
      rows.replaceChildren(...page.items.map(docRow));
    }
    if (!page.items.length) {
      rows.replaceChildren();
      const row = el("tr", "empty");
      const cell = el("td", "muted", state.q || state.status || state.type ? "No documents match." : "No documents yet.");
      cell.colSpan = COLUMNS;
      row.append(cell);
      rows.append(row);
    }
    const first = page.total ? page.offset + 1 : 0;
    const last = page.offset + page.items.length;
    $("page-info").textContent = `${first.toLocaleString()}–${last.toLocaleString()} of ${page.total.toLocaleString()} · page ${state.page} of ${pages}`;
    $("page-prev").disabled = state.page <= 1;
    $("page-next").disabled = state.page >= pages;
    showHeadings();
    updateBulk();
    const busy = page.items.some((d) => d.status === "queued" || d.status === "processing");
    timer = setTimeout(refresh, busy ? 1000 : 5000);
  }

  // -- bulk actions (staff) ----------------------------------------------------------------
  const selectPage = $("select-page");
  function updateBulk() {
    if (!manage) return;
    const onPage = lastPage.map((d) => d.id);
    const picked = onPage.filter((id) => selected.has(id)).length;
    selectPage.checked = onPage.length > 0 && picked === onPage.length;
    selectPage.indeterminate = picked > 0 && picked < onPage.length;
    $("bulk-count").textContent = selected.size ? `${selected.size} selected` : "";
    $("bulk-reindex").disabled = $("bulk-delete").disabled = selected.size === 0;
  }
  async function bulk(action) {
    const ids = [...selected];
    const count = ids.length === 1 ? "1 document" : `${ids.length} documents`;
    if (action === "delete" && !window.confirm(`Delete ${count}? This can't be undone.`)) return;
    $("bulk-reindex").disabled = $("bulk-delete").disabled = true;
    try {
      const result = await call("POST", `/kbs/${encodeURIComponent(kb)}/documents/bulk`, { action, ids });
      const verb = action === "delete" ? "Deleted" : "Queued again";
      const done = result.done.length === 1 ? "1 document" : `${result.done.length} documents`;
      let text = `${verb}: ${done}.`;
      if (result.skipped.length) {
        const reasons = [...new Set(result.skipped.map((s) => s.reason))].join(" ");
        text += ` Skipped ${result.skipped.length}: ${reasons}`;
      }
      say(text);
      selected.clear();
      lastDrawn = "";
    } catch (error) {
      say(`Nothing was ${action === "delete" ? "deleted" : "re-indexed"}: ${error.message}`, true);
    }
    refresh();
  }
  if (manage) {
    selectPage.addEventListener("change", () => {
      lastPage.forEach((d) => { if (selectPage.checked) selected.add(d.id); else selected.delete(d.id); });
      rows.querySelectorAll("td.select input").forEach((box) => { box.checked = selectPage.checked; });
      updateBulk();
    });
    $("bulk-reindex").addEventListener("click", () => bulk("reindex"));
    $("bulk-delete").addEventListener("click", () => bulk("delete"));
  }

  // -- the upload tray (staff) -------------------------------------------------------------
  const CLEAR_AFTER_MS = 8000; // accepted uploads leave the tray; problems stay until dismissed
  function trayItem(file) {
    const item = el("li", "upload");
    const name = el("span", "name", file.name);
    const bar = el("progress");
    bar.max = 100;
    bar.value = 0;
    const percent = el("span", "percent", "0%");
    const note = el("span", "note", "Uploading…");
    const button = el("button", "small", "Cancel");
    button.type = "button";
    item.append(name, bar, percent, note, button);
    $("uploads").prepend(item);
    return { item, bar, percent, note, button };
  }
  function settle(entry, kind, content) {
    entry.item.classList.add(kind);
    entry.item.dataset.result = kind;
    entry.bar.remove();
    entry.percent.remove();
    entry.note.replaceChildren(...content);
    entry.button.textContent = "Dismiss";
    entry.button.onclick = () => entry.item.remove();
    if (kind === "accepted" || kind === "cancelled") setTimeout(() => entry.item.remove(), CLEAR_AFTER_MS);
  }
  function refusal(file) {
    const limit = parseInt(root.dataset.maxBytes, 10);
    if (file.size > limit) {
      const size = humanBytes(file.size);
      if (size === humanBytes(limit)) return `This file is just over the ${humanBytes(limit)} limit.`;
      return `This file is ${size}; the limit is ${humanBytes(limit)}.`;
    }
    if (file.size === 0) return "This file is empty.";
    const accepted = root.dataset.accept.split(",");
    const dot = file.name.lastIndexOf(".");
    const ext = dot > 0 ? file.name.slice(dot).toLowerCase() : "";
    if (ext && !accepted.includes(ext)) return `Docent can't read ${ext} files.`;
    return "";
  }
  function upload(file) {
    const entry = trayItem(file);
    const refused = refusal(file);
    if (refused) {
      settle(entry, "rejected", [el("strong", "", "Not uploaded: "), refused]);
      return;
    }
    const body = new FormData();
    body.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${api}/kbs/${encodeURIComponent(kb)}/documents`);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    entry.button.onclick = () => xhr.abort();
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const value = Math.round((100 * e.loaded) / e.total);
      entry.bar.value = value;
      entry.percent.textContent = `${value}%`;
      if (value === 100) entry.note.textContent = "Checking…";
    };
    xhr.onload = () => {
      if (xhr.status !== 201) {
        let detail = `the server answered ${xhr.status}.`;
        try { detail = JSON.parse(xhr.responseText).detail || detail; } catch (_) { /* keep it */ }
        settle(entry, "rejected", [el("strong", "", "Upload failed: "), String(detail)]);
        return;
      }
      const [result] = JSON.parse(xhr.responseText);
      const doc = result.document;
      if (!result.created) {
        const link = el("a", "", doc.filename);
        link.href = doc.url;
        settle(entry, "duplicate", ["Already here as ", link]);
      } else if (doc.status === "failed") {
        settle(entry, "rejected", [el("strong", "", "Rejected: "), doc.error || "Docent can't read this file."]);
      } else {
        settle(entry, "accepted", ["Uploaded; queued for indexing."]);
      }
      refresh();
    };
    xhr.onerror = () => settle(entry, "rejected", [el("strong", "", "Upload failed: "), "the connection was lost. Try again."]);
    xhr.onabort = () => {
      const sent = entry.bar.value === 100; // every byte out: the server may have kept it
      settle(entry, "cancelled", [sent ? "Cancelled; if it had arrived already, it is in the list below." : "Cancelled; nothing was uploaded."]);
      if (sent) refresh();
    };
    xhr.send(body);
  }
  if (manage) {
    const dropzone = $("dropzone");
    const picker = $("files");
    const addFiles = (files) => [...files].forEach(upload);
    picker.addEventListener("change", () => { addFiles(picker.files); picker.value = ""; });
    dropzone.addEventListener("dragover", (e) => { e.preventDefault(); dropzone.classList.add("over"); });
    dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
    dropzone.addEventListener("drop", (e) => { e.preventDefault(); dropzone.classList.remove("over"); addFiles(e.dataTransfer.files); });
  }

  readUrl();
  refresh();
})();
