/* LiveRec admin tools: live preview of unpublished slot edits, and evaluation progress polling.
 * Plain DOM, no library: the admin must work with no internet connection. */
(function () {
  "use strict";
  function ready(fn) { if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn); }

  ready(function () {
    var form = document.getElementById("lr-tune-form");
    if (form) {
      var out = document.getElementById("lr-preview"), timer = null, seq = 0;
      var run = function () {
        var visitor = form.elements.visitor.value, item = form.elements.item.value;
        if (!visitor && !item) return;
        var mine = ++seq;
        out.setAttribute("aria-busy", "true");
        // The CSRF token travels in the form body; the preview writes nothing.
        fetch(form.dataset.previewUrl, { method: "POST", body: new FormData(form), credentials: "same-origin" })
          .then(function (r) { return r.text(); })
          .then(function (html) { if (mine === seq) { out.innerHTML = html; out.removeAttribute("aria-busy"); } })
          .catch(function (e) { out.textContent = "Preview failed: " + e; });
      };
      document.getElementById("lr-preview-btn").addEventListener("click", run);
      // Live: once a visitor or item is chosen, every edit re-renders the preview (debounced).
      form.addEventListener("input", function (e) {
        if (e.target.name === "note") return;
        clearTimeout(timer);
        timer = setTimeout(run, 400);
      });
    }

    var rows = document.querySelectorAll("tr.lr-queued[data-status-url], tr.lr-running[data-status-url]");
    if (rows.length) {
      var poll = function () {
        var pending = 0;
        rows.forEach(function (row) {
          if (row.dataset.done) return;
          pending++;
          fetch(row.dataset.statusUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
            row.querySelector(".lr-run-status").textContent = s.status;
            row.querySelector("progress").value = s.progress;
            if (s.status === "done" || s.status === "failed") { row.dataset.done = "1"; location.reload(); }
          });
        });
        if (pending) setTimeout(poll, 2000);
      };
      setTimeout(poll, 2000);
    }
  });
})();
