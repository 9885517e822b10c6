/* Keyboard shortcuts for the queue and the ticket page: an enhancement only, every action is a form that
   works without it. Queue: j/k move, o or Enter open, x select, a acknowledge, r resolve (asks the reason),
   / search, ? help. Ticket page: a acknowledge, r resolve (focuses the reason). */
(function () {
  "use strict";

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  var rows = Array.prototype.slice.call(document.querySelectorAll("table.queue tr.ticket"));
  var bulk = document.getElementById("bulk");
  var help = document.getElementById("shortcut-help");
  var cursor = -1;

  function move(step) {
    if (!rows.length) { return; }
    if (cursor >= 0) { rows[cursor].classList.remove("cursor"); }
    cursor = Math.max(0, Math.min(rows.length - 1, cursor + step));
    rows[cursor].classList.add("cursor");
    rows[cursor].scrollIntoView({ block: "nearest" });
  }

  function box(row) { return row.querySelector('input[type="checkbox"][name="ids"]'); }

  function selectedOrCurrent() {
    var any = rows.some(function (row) { var b = box(row); return b && b.checked; });
    if (!any && cursor >= 0 && box(rows[cursor])) { box(rows[cursor]).checked = true; any = true; }
    return any;
  }

  function toggleHelp(show) {
    if (!help) { return; }
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  function queueKey(event) {
    switch (event.key) {
      case "j": move(1); return true;
      case "k": move(-1); return true;
      case "o":
      case "Enter":
        if (cursor >= 0) { window.location.href = rows[cursor].querySelector("td.id a").href; return true; }
        return false;
      case "x":
        if (cursor >= 0 && box(rows[cursor])) { box(rows[cursor]).checked = !box(rows[cursor]).checked; return true; }
        return false;
      case "a":
        if (bulk && selectedOrCurrent()) {
          bulk.querySelector("#bulk-action").value = "acknowledge";
          bulk.requestSubmit();
          return true;
        }
        return false;
      case "r":
        if (bulk && selectedOrCurrent()) {
          bulk.querySelector("#bulk-action").value = "resolve";
          bulk.querySelector("#bulk-reason").focus();
          return true;
        }
        return false;
      default: return false;
    }
  }

  function ticketKey(event) {
    if (event.key === "a") {
      var ack = document.querySelector('form[action$="/acknowledge"] button');
      if (ack) { ack.click(); return true; }
    }
    if (event.key === "r") {
      var reason = document.getElementById("reason");
      if (reason) { reason.focus(); return true; }
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (event.key === "Escape") { toggleHelp(false); return; }
    if (typing(event.target)) { return; }
    var handled = false;
    if (event.key === "?") { toggleHelp(); handled = true; }
    else if (event.key === "/") {
      var search = document.getElementById("q");
      if (search) { search.focus(); search.select(); handled = true; }
    } else if (rows.length) { handled = queueKey(event); }
    else { handled = ticketKey(event); }
    if (handled) { event.preventDefault(); }
  });
})();
