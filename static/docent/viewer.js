// The document viewer: keep the cited page in view while page images above it load.
// (The #page-N anchor already scrolls there; images arriving later can push it away.)
"use strict";
(function () {
  const target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
  if (!target) return;
  const settle = () => target.scrollIntoView({ block: "start" });
  const image = target.querySelector("img.page-image");
  if (image && !image.complete) image.addEventListener("load", settle, { once: true });
  window.addEventListener("load", settle, { once: true });
})();
