// Sorting and filtering of the device table. Runs offline: no request leaves the page.
// The filter state is kept in the address's fragment (#q=...&maker=...), so a filtered view
// can be shared as a link to the same file.
(function () {
  "use strict";
  var table = document.getElementById("device-table");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = document.getElementById("filter-text");
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var count = document.getElementById("shown-count");

  function apply() {
    var needle = (text.value || "").trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var ok = !needle || row.getAttribute("data-search").indexOf(needle) !== -1;
      selects.forEach(function (sel) {
        if (ok && sel.value && row.getAttribute("data-" + sel.getAttribute("data-filter")) !== sel.value) { ok = false; }
      });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = String(shown);
    var parts = [];
    if (needle) { parts.push("q=" + encodeURIComponent(needle)); }
    selects.forEach(function (sel) {
      if (sel.value) { parts.push(sel.getAttribute("data-filter") + "=" + encodeURIComponent(sel.value)); }
    });
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (window.location.hash !== hash && history.replaceState) {
      try { history.replaceState(null, "", hash || window.location.pathname); } catch (e) { /* file:// may refuse */ }
    }
  }

  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);

  function fromHash() {
    var hash = window.location.hash.replace(/^#/, "");
    if (!hash) { return; }
    hash.split("&").forEach(function (pair) {
      var i = pair.indexOf("=");
      if (i < 0) { return; }
      var key = pair.slice(0, i), value = decodeURIComponent(pair.slice(i + 1));
      if (key === "q") { text.value = value; return; }
      if (key === "sort") {
        // sort=N sorts by the Nth column (from 1), sort=-N the other way round.
        var th = headers[Math.abs(parseInt(value, 10)) - 1];
        if (th && th.hasAttribute("data-sort-key")) {
          sortBy(th);
          if (value.charAt(0) === "-") { sortBy(th); }
        }
        return;
      }
      selects.forEach(function (sel) { if (sel.getAttribute("data-filter") === key) { sel.value = value; } });
    });
  }

  function sortBy(th) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-sort-key") === "number";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.sort(function (a, b) {
      var x = a.cells[index].getAttribute("data-sort"), y = b.cells[index].getAttribute("data-sort");
      var r = numeric ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y, undefined, {numeric: true});
      return ascending ? r : -r;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  headers.forEach(function (th) {
    if (th.hasAttribute("data-sort-key")) {
      th.addEventListener("click", function () { sortBy(th); });
      th.tabIndex = 0;
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(th); } });
    }
  });
  text.addEventListener("input", apply);
  selects.forEach(function (sel) { sel.addEventListener("change", apply); });
  fromHash();
  apply();
  document.documentElement.setAttribute("data-ready", "1");
}());
