// "Ask only these documents": a checklist of the knowledge base's ready documents (from the
// page's JSON, at most 500 by name), searchable, shown as removable chips above the
// question. chat.js sends the checked ones with each question.
(() => {
  "use strict";
  const box = document.getElementById("doc-filter");
  const data = document.getElementById("doc-filter-data");
  if (!box || !data) return;
  const { items, total } = JSON.parse(data.textContent);
  const list = document.getElementById("doc-filter-list");
  const search = document.getElementById("doc-filter-q");
  const label = document.getElementById("doc-filter-label");
  const note = document.getElementById("doc-filter-note");
  const clear = document.getElementById("doc-filter-clear");
  const chosen = document.getElementById("doc-filter-chosen");

  const rows = items.map((doc) => {
    const li = document.createElement("li");
    const option = document.createElement("label");
    const check = document.createElement("input");
    check.type = "checkbox";
    check.value = String(doc.id);
    check.dataset.name = doc.name;
    const name = document.createElement("span");
    name.textContent = doc.name;
    option.append(check, name);
    if (doc.tag) {
      const tag = document.createElement("span");
      tag.className = "doc-tag";
      tag.textContent = doc.tag;
      option.append(tag);
    }
    li.append(option);
    li.dataset.search = `${doc.name} ${doc.tag}`.toLowerCase();
    return li;
  });
  list.append(...rows);

  function checked() { return [...list.querySelectorAll("input:checked")]; }

  function render() {
    const picked = checked();
    label.textContent = picked.length ? `${picked.length} of ${total} chosen` : "All documents";
    box.classList.toggle("active", picked.length > 0);
    clear.hidden = !picked.length;
    chosen.hidden = !picked.length;
    chosen.replaceChildren();
    if (!picked.length) return;
    chosen.append(document.createTextNode("Asking only: "));
    for (const check of picked) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "doc-chip";
      chip.textContent = `${check.dataset.name} ×`;
      chip.setAttribute("aria-label", `Stop limiting to ${check.dataset.name}`);
      chip.addEventListener("click", () => { check.checked = false; render(); });
      chosen.append(chip);
    }
  }

  function find() {
    const words = search.value.trim().toLowerCase();
    let shown = 0;
    for (const li of rows) {
      li.hidden = Boolean(words) && !li.dataset.search.includes(words);
      if (!li.hidden) shown += 1;
    }
    note.textContent = !shown ? "No document matches."
      : total > items.length ? `The first ${items.length} of ${total} documents, by name.` : "";
  }

  list.addEventListener("change", render);
  search.addEventListener("input", find);
  clear.addEventListener("click", () => { checked().forEach((c) => { c.checked = false; }); render(); });
  box.addEventListener("toggle", () => { if (box.open) search.focus(); });
  document.addEventListener("click", (event) => { if (box.open && !box.contains(event.target)) box.open = false; });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && box.open) {
      event.stopPropagation();  // Esc here closes the list, it doesn't stop an answer
      box.open = false;
      box.querySelector("summary").focus();
    }
  });
  find();
  render();
})();
