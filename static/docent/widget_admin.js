// The widget's admin page: the preview (drawn by widget.js, data-preview) and the line under
// the embed snippet follow the form as the owner types, before anything is saved.
"use strict";
(function () {
  const field = (name) => document.getElementById(`id_${name}`);
  const preview = document.getElementById("docent-widget-preview");
  const lines = (name) => (field(name) ? field(name).value.split("\n").map((l) => l.trim()).filter(Boolean) : []);

  function config() {
    return {
      title: field("title") ? field("title").value : "Help",
      greeting: field("greeting") ? field("greeting").value : "",
      starters: lines("starter_questions").slice(0, 6),
      color: field("color") ? field("color").value : "#3056d3",
      position: field("position") ? field("position").value : "bottom-right",
      screenshots: field("accept_screenshots") ? field("accept_screenshots").checked : true,
      max_chars: Number(field("max_message_chars") && field("max_message_chars").value) || 1000,
    };
  }

  // Where the snippet will work: the sites listed (the server checks each one on save).
  function where() {
    const note = document.getElementById("docent-snippet-where");
    if (!note) return;
    const sites = lines("allowed_origins");
    const enabled = !field("enabled") || field("enabled").checked;
    let text = `It works on pages of ${sites.join(", ")}.`;
    if (!enabled) text = "The widget is turned off: pages with the snippet say “Help is unavailable on this page”.";
    else if (!sites.length) text = "No site is listed under “Where it may appear” yet: until one is, pages with the snippet say “Help is unavailable on this page”.";
    note.textContent = text;
    note.classList.toggle("warning", !enabled || !sites.length);
  }

  function copyButton() {
    const code = document.getElementById("docent-snippet");
    const copy = document.getElementById("docent-snippet-copy");
    if (!code || !copy || code.closest(".docent-snippet").dataset.saved !== "1" || !navigator.clipboard) return;
    copy.hidden = false;
    copy.addEventListener("click", () => {
      navigator.clipboard.writeText(code.textContent).then(() => { copy.textContent = "Copied"; });
    });
  }

  function update() {
    if (preview) preview.dispatchEvent(new CustomEvent("docent:preview", { detail: config() }));
    where();
  }
  const form = document.querySelector("#widget_form");
  if (form) {
    form.addEventListener("input", update);
    form.addEventListener("change", update);
  }
  copyButton();
  update();
})();
