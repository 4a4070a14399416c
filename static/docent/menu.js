// The account menu in the top bar is a <details>: it works without script; this closes it
// on Escape and on a click anywhere else, as people expect of a menu.
(() => {
  const menu = document.querySelector(".account-menu");
  if (!menu) return;
  document.addEventListener("click", (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menu.open) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
})();
