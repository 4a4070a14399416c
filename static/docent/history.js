// Docent chat page: the sidebar's history ("Recent"): search, rename, delete, live updates.
// No framework; the CSP forbids inline script and inline handlers, so everything is bound here.
//
// EVENT CONTRACT (static/docent/chat.js dispatches, this file listens):
//   document.dispatchEvent(new CustomEvent("docent:conversation", {detail: {id, title, kb}}))
//   - once per question, when the server reports the conversation of the answer (its SSE
//     "conversation" event), for a new conversation and an existing one alike;
//   - id: the conversation's uid (string, required);
//   - kb: the knowledge base's slug; an event for another knowledge base is ignored;
//   - title: optional (the SSE event carries none); the server's title wins when it has one.
//   The conversation is then marked aria-current and drawn at the top of the list, under
//   "Today", without a reload (the list is fetched again; a search in progress is left alone).
//
// ENDPOINTS (assistant/history_views.py), under data-list-url = /kb/<slug>/conversations:
//   GET  <list>?q=words      {conversations: [{id, title, updated_at, period, when}], now}
//   POST <list>/<id>/rename  title=...  ->  {id, title}      (4xx: {error})
//   POST <list>/<id>/delete             ->  {deleted}        (4xx: {error})
// draw() must produce the markup templates/assistant/chat.html renders for the same list.
(() => {
  "use strict";
  const root = document.getElementById("history");
  if (!root || !root.dataset.listUrl) return;
  const listBox = document.getElementById("history-list");
  const search = document.getElementById("history-q");
  const errorBox = document.getElementById("history-error");
  const status = document.getElementById("history-status");
  const chat = document.getElementById("chat");
  const csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  const { kb, listUrl, newUrl } = root.dataset;
  const DEBOUNCE_MS = 200; // typing pauses this long before the server is asked
  let current = root.dataset.current || "";
  let loading = null; // the AbortController of the list request in flight
  let timer = 0;

  const { el, icon } = window.DocentAnswers; // static/docent/answers.js, loaded first

  function actionButton(action, title) {
    const button = el("button", "history-action");
    button.type = "button";
    button.dataset.action = action;
    button.setAttribute("aria-label", `${action === "rename" ? "Rename" : "Delete"} ${title}`);
    button.append(icon(action === "rename" ? "pencil" : "trash"));
    return button;
  }

  function itemNode(item) {
    const li = el("li", "history-item");
    li.dataset.id = item.id;
    const link = el("a", "history-link");
    link.setAttribute("href", `${newUrl}&c=${item.id}`);
    link.title = item.title;
    if (item.id === current) link.setAttribute("aria-current", "page");
    const time = el("time", "", item.when);
    time.setAttribute("datetime", item.updated_at);
    link.append(el("span", "history-title", item.title), time);
    const actions = el("span", "history-actions");
    actions.append(actionButton("rename", item.title), actionButton("delete", item.title));
    li.append(link, actions);
    return li;
  }

  // Items come newest first, so each period is one run of them.
  function draw(items, query) {
    const groups = [];
    let list = null;
    let period = null;
    for (const item of items) {
      if (item.period !== period) {
        period = item.period;
        const group = el("div", "history-group");
        list = el("ul", "recent");
        group.append(el("h3", "history-period", period), list);
        groups.push(group);
      }
      list.append(itemNode(item));
    }
    if (!groups.length) {
      groups.push(el("p", "muted history-empty", query ? "No conversations match" : "No conversations yet."));
    }
    listBox.replaceChildren(...groups);
    if (query) {
      const n = items.length;
      status.textContent = n ? `${n} conversation${n === 1 ? "" : "s"} match` : "No conversations match";
    } else {
      status.textContent = "";
    }
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  async function load(query) {
    if (loading) loading.abort();
    const controller = new AbortController();
    loading = controller;
    const url = new URL(listUrl, window.location.href);
    if (query) url.searchParams.set("q", query);
    try {
      const response = await fetch(url, { signal: controller.signal, headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`The server answered ${response.status}.`);
      return await response.json();
    } finally {
      if (loading === controller) loading = null;
    }
  }

  async function post(url, fields) {
    showError("");
    const body = new FormData();
    for (const [name, value] of Object.entries(fields)) body.append(name, value);
    try {
      const response = await fetch(url, { method: "POST", body, headers: { "X-CSRFToken": csrf, Accept: "application/json" } });
      let data = {};
      try { data = await response.json(); } catch (_) { /* not JSON */ }
      if (!response.ok) throw new Error(data.error || `The server answered ${response.status}.`);
      return data;
    } catch (error) {
      showError(error.message || "The connection failed.");
      return null;
    }
  }

  async function runSearch() {
    clearTimeout(timer);
    const query = search.value.trim();
    try {
      draw((await load(query)).conversations, query);
      showError("");
    } catch (error) {
      if (error.name !== "AbortError") showError(error.message || "The search failed.");
    }
  }

  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(runSearch, DEBOUNCE_MS);
  });
  search.form.addEventListener("submit", (event) => { event.preventDefault(); runSearch(); });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && search.value) {  // clears the search; the next Escape closes the drawer
      event.preventDefault();
      event.stopPropagation();
      search.value = "";
      runSearch();
    }
  });

  function setTitle(li, title) {
    li.querySelector(".history-link").title = title;
    li.querySelector(".history-title").textContent = title;
    li.querySelector("[data-action=rename]").setAttribute("aria-label", `Rename ${title}`);
    li.querySelector("[data-action=delete]").setAttribute("aria-label", `Delete ${title}`);
  }

  // Inline rename: an input takes the title's place; Enter (or leaving it) saves, Escape cancels.
  function startRename(li) {
    const link = li.querySelector(".history-link");
    const actions = li.querySelector(".history-actions");
    const title = link.title;
    const input = el("input", "history-rename");
    input.type = "text";
    input.value = title;
    input.maxLength = 200;
    input.setAttribute("aria-label", `New title for ${title}`);
    link.hidden = true;
    actions.hidden = true;
    li.prepend(input);
    input.focus();
    input.select();
    let finished = false;
    async function finish(save, byKeyboard) {
      if (finished) return;
      finished = true;
      const value = input.value.trim();
      if (save && value && value !== title) {
        input.disabled = true;
        const saved = await post(`${listUrl}/${li.dataset.id}/rename`, { title: value });
        if (saved) setTitle(li, saved.title);
      }
      input.remove();
      link.hidden = false;
      actions.hidden = false;
      if (byKeyboard) li.querySelector("[data-action=rename]").focus();
    }
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); finish(true, true); }
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); finish(false, true); }
    });
    input.addEventListener("blur", () => finish(true, false));
  }

  // Delete asks first, in place: "Delete? [Delete] [Cancel]"; Cancel has the focus.
  function confirmDelete(li) {
    const actions = li.querySelector(".history-actions");
    const title = li.querySelector(".history-link").title;
    const box = el("span", "history-confirm");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", `Delete ${title}?`);
    const yes = el("button", "history-yes", "Delete");
    const no = el("button", "history-no", "Cancel");
    yes.type = no.type = "button";
    box.append(el("span", "", "Delete?"), yes, no);
    actions.hidden = true;
    li.append(box);
    no.focus();
    function cancel() {
      // Removed a moment later: chat.js closes the drawer on a click whose target has left
      // the sidebar, and this click is still on its way up to the document.
      box.hidden = true;
      setTimeout(() => box.remove());
      actions.hidden = false;
      li.querySelector("[data-action=delete]").focus();
    }
    no.addEventListener("click", cancel);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); cancel(); }
    });
    yes.addEventListener("click", async () => {
      yes.disabled = no.disabled = true;
      const id = li.dataset.id;
      if (!(await post(`${listUrl}/${id}/delete`, {}))) { yes.disabled = no.disabled = false; return; }
      if (id === current || id === chat?.dataset.conversation) {
        window.location.assign(newUrl);  // the open conversation is gone: start a new one
        return;
      }
      removeItem(li);
    });
  }

  function removeItem(li) {
    const next = li.nextElementSibling || li.previousElementSibling;
    const group = li.closest(".history-group");
    li.remove();
    if (group && !group.querySelector(".history-item")) group.remove();
    if (!listBox.querySelector(".history-item")) draw([], search.value.trim());
    (next?.querySelector(".history-link") || search).focus();
  }

  listBox.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest(".history-item");
    if (button.dataset.action === "rename") startRename(li);
    else confirmDelete(li);
  });

  function markCurrent() {
    for (const li of listBox.querySelectorAll(".history-item")) {
      const link = li.querySelector(".history-link");
      if (li.dataset.id === current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  document.addEventListener("docent:conversation", async (event) => {
    const detail = event.detail || {};
    if (!detail.id || (detail.kb && detail.kb !== kb)) return;
    current = String(detail.id);
    markCurrent();
    if (search.value.trim()) return;  // the results of a search stay; clearing it fetches the list
    try {
      const data = await load("");
      const items = data.conversations;
      const index = items.findIndex((item) => item.id === current);
      const found = index >= 0 ? items.splice(index, 1)[0] : { id: current, title: "" };
      const title = found.title || detail.title || "New conversation";
      // The server moves a conversation up only when its answer ends; it is being answered now.
      items.unshift({ ...found, ...data.now, title });
      draw(items, "");
    } catch (error) {
      if (error.name !== "AbortError") showError(error.message || "Could not refresh the list.");
    }
  });
})();
