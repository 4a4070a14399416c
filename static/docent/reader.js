// A source opened from the help widget takes the widget's colour (#rrggbb, checked by the
// server); set through the CSSOM, which the page's CSP allows where a style attribute is not.
"use strict";
(function () {
  const accent = document.body.dataset.accent || "";
  if (/^#[0-9a-fA-F]{6}$/.test(accent)) document.body.style.setProperty("--reader-accent", accent);
})();
