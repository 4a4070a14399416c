// "Ask only these documents": the checklist of the knowledge base's ready documents (the
// page lists at most 500, by name), searchable, the chosen ones shown as removable chips
// above the question. chat.js sends the checked ones with each question.
(() => {
  "use strict";
  const box = document.getElementById("doc-filter");
  if (!box) return;
  const list = document.getElementById("doc-filter-list");
  const search = document.getElementById("doc-filter-q");
  const label = document.getElementById("doc-filter-label");
  const note = document.getElementById("doc-filter-note");
  const clear = document.getElementById("doc-filter-clear");
  const chosen = document.getElementById("doc-filter-chosen");
  const rows = [...list.querySelectorAll("li")];  // rendered (and escaped) by the server
  const total = Number(list.dataset.total);
  for (const li of rows) li.dataset.search = li.textContent.toLowerCase();

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
      : total > rows.length ? `The first ${rows.length} of ${total} documents, by name.` : "";
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
