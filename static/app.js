/* Cutover's one script of its own. External (script-src 'self'), no inline script, no eval: the CSP holds.
   Pollers (elements whose hx-trigger is "every …") skip their requests while the tab is hidden, and ask
   at once when it is shown again. Without it, or without JavaScript, every page works the same. */
(function () {
  "use strict";
  const POLLERS = '[hx-trigger^="every "]';

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (document.hidden && event.detail.elt.matches(POLLERS)) {
      event.preventDefault();  // htmx keeps the poll's timer: it asks again at its next tick
    }
  });

  document.addEventListener("visibilitychange", function () {
    if (document.hidden || !window.htmx) return;
    document.querySelectorAll(POLLERS).forEach(function (elt) {
      const url = elt.getAttribute("hx-get");
      if (url) window.htmx.ajax("get", url, {source: elt});  // its own hx-target and hx-swap
    });
  });
})();
