// The article view: the cited sentence (#cited, tabindex=-1) gets the focus, so a keyboard or screen reader
// user starts there; without JavaScript the #cited fragment still scrolls to it.
"use strict";

(() => {
  const cited = document.getElementById("cited");
  if (!cited) return;
  cited.scrollIntoView({ block: "center" });
  cited.focus({ preventScroll: true });
})();
