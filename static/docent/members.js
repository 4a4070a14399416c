// The members picker on the knowledge base forms (ingest/forms.py: MemberPicker).
// Without script it is a plain list of checkboxes; this adds the filter box for the
// people not yet members and keeps the count of those ticked up to date.
(() => {
  for (const picker of document.querySelectorAll("[data-member-picker]")) {
    const count = picker.querySelector("[data-member-count]");
    const search = picker.querySelector("[data-member-search]");
    const others = picker.querySelector("[data-member-others]");
    const none = picker.querySelector("[data-member-none]");
    const boxes = () => picker.querySelectorAll("input[type=checkbox]");
    const recount = () => {
      const n = [...boxes()].filter((box) => box.checked).length;
      count.textContent = n === 0 ? "No members yet" : `${n} member${n === 1 ? "" : "s"}`;
    };
    picker.addEventListener("change", recount);
    if (!search || !others) continue;
    search.hidden = false;
    const filter = () => {
      const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0;
      for (const item of others.children) {
        const text = item.textContent.toLowerCase();
        // A ticked person stays in view, so a new filter never hides a choice already made.
        const match = item.querySelector("input").checked || words.every((w) => text.includes(w));
        item.hidden = !match;
        shown += match ? 1 : 0;
      }
      none.hidden = shown > 0;
    };
    search.addEventListener("input", filter);
    // Enter in the filter box must not submit the whole settings form.
    search.addEventListener("keydown", (event) => {
      if (event.key === "Enter") event.preventDefault();
    });
  }
})();
