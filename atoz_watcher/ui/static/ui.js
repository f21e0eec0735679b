// The front-desk page's one script. The pages work without it; with it, Today shows new
// documents as they are filed: every second it asks for the rows newer than the newest shown
// and puts them on top. It asks nothing while the tab is hidden.
(function () {
  "use strict";

  if (window.atozUi) {
    return; // loaded twice (the page and the shell): one poller is enough
  }
  window.atozUi = true;

  var PERIOD_MS = 1000;

  function startToday(table) {
    var body = table.tBodies[0];
    var timer = null;
    var busy = false;

    function latest() {
      return parseInt(table.getAttribute("data-latest") || "0", 10) || 0;
    }

    function insert(html) {
      var holder = document.createElement("tbody");
      holder.innerHTML = html;
      var rows = Array.prototype.slice.call(holder.querySelectorAll("tr[data-docnum]"));
      if (rows.length === 0) {
        return;
      }
      var newest = latest();
      var first = body.firstElementChild;
      rows.forEach(function (row) {
        var docNum = parseInt(row.getAttribute("data-docnum"), 10);
        if (body.querySelector('tr[data-docnum="' + docNum + '"]')) {
          return; // already shown (a slow answer overtaken by the next)
        }
        row.className = "new";
        body.insertBefore(row, first);
        newest = Math.max(newest, docNum);
      });
      table.setAttribute("data-latest", String(newest));
      var empty = document.getElementById("today-empty");
      if (empty) {
        empty.parentNode.removeChild(empty);
      }
    }

    function poll() {
      if (busy || document.hidden) {
        return;
      }
      busy = true;
      var request = new XMLHttpRequest();
      request.open("GET", "/ui/today/rows?after=" + latest());
      request.timeout = 10000;
      request.onload = function () {
        busy = false;
        if (request.status === 200) {
          insert(request.responseText);
        } else if (request.status === 401 || request.status === 403 || request.responseURL.indexOf("/ui/login") !== -1) {
          stop(); // the session ended: the next reload asks to log in again
        }
      };
      request.onerror = request.ontimeout = request.onabort = function () {
        busy = false;
      };
      request.send();
    }

    function start() {
      if (timer === null) {
        timer = window.setInterval(poll, PERIOD_MS);
      }
    }

    function stop() {
      if (timer !== null) {
        window.clearInterval(timer);
        timer = null;
      }
    }

    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        stop();
      } else {
        poll();
        start();
      }
    });
    if (!document.hidden) {
      start();
    }
  }

  function ready() {
    var table = document.getElementById("today");
    if (table && table.tBodies.length > 0) {
      startToday(table);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
