// hcserver's dashboard: live updates of the checks page (server-sent events), its filter, relative
// times, copy buttons and delete confirmations. No library; the pages work without it, only
// staying still and filtering on submit.
"use strict";

(function () {
  // The server's clock (its "now" in the page and in every message) against the browser's, so
  // "3 minutes ago" counts from the server's time.
  let offset = 0;

  const UNITS = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

  // The same rule as ago() in hcserver/web/dashboard_words.py.
  function ago(ts) {
    if (ts === null || ts === "" || ts === undefined) return "never";
    const seconds = Math.floor(Date.now() / 1000 + offset - Number(ts));
    if (seconds < 10) return "just now";
    for (const [word, size] of UNITS) {
      if (seconds >= size) {
        const n = Math.floor(seconds / size);
        return n + " " + word + (n === 1 ? "" : "s") + " ago";
      }
    }
    return "just now";
  }

  function exact(ts) {
    if (ts === null || ts === "") return "";
    return new Date(Number(ts) * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function refreshTimes() {
    document.querySelectorAll("time[data-ts]").forEach(function (el) {
      if (el.dataset.ts !== "") el.textContent = ago(el.dataset.ts);
    });
  }

  const ICONS = { new: "\u25cb", up: "\u2714", grace: "!", down: "\u2716", paused: "\u2016", started: "\u25b6" };

  function setStatus(row, status) {
    row.dataset.status = status;
    const badge = row.querySelector(".status");
    badge.className = "status s-" + status;
    badge.querySelector(".icon").textContent = ICONS[status] || "";
    badge.querySelector(".word").textContent = status;
  }

  function updateTitle() {
    const down = document.querySelectorAll("#checks tbody tr[data-status=down]").length;
    document.title = (down ? down + " down - " : "") + "hcserver";
  }

  // -- the filter ------------------------------------------------------------------------------

  function filterRows() {
    const table = document.getElementById("checks");
    if (!table) return;
    const input = document.getElementById("q");
    const text = input ? input.value.trim().toLowerCase() : "";
    const tags = table.dataset.tags ? table.dataset.tags.split(" ") : [];
    table.querySelectorAll("tbody tr").forEach(function (row) {
      const rowTags = row.dataset.tags ? row.dataset.tags.split(" ") : [];
      const shown = tags.every(function (t) { return rowTags.indexOf(t) >= 0; }) &&
        (!text || row.dataset.search.indexOf(text) >= 0);
      row.hidden = !shown;
    });
  }

  // -- live updates ----------------------------------------------------------------------------

  function apply(message) {
    const tbody = document.querySelector("#checks tbody");
    offset = message.now - Date.now() / 1000;
    const template = document.createElement("template");
    for (const [key, html] of Object.entries(message.html)) {
      // Rows come rendered (and escaped) by the server's own row template.
      template.innerHTML = html.trim();
      const fresh = template.content.firstElementChild;
      const old = document.getElementById("c-" + key);
      if (old) old.replaceWith(fresh); else tbody.appendChild(fresh);
      fresh.classList.add("flash");
    }
    for (const [key, state] of Object.entries(message.rows)) {
      const row = document.getElementById("c-" + key);
      if (!row) continue;
      const [status, last] = state;
      if (row.dataset.status !== status) {
        setStatus(row, status);
        row.classList.remove("flash");
        void row.offsetWidth; // restart the animation
        row.classList.add("flash");
      }
      const time = row.querySelector("time");
      time.dataset.ts = last === null ? "" : String(last);
      time.title = exact(last);
      time.textContent = ago(last);
    }
    for (const key of message.gone) {
      const row = document.getElementById("c-" + key);
      if (row) row.remove();
    }
    filterRows();
    updateTitle();
  }

  function listen(table) {
    const live = document.getElementById("live");
    const url = "/events?token=" + encodeURIComponent(table.dataset.token);
    let source = null;

    function connect() {
      source = new EventSource(url);
      source.onopen = function () { if (live) live.textContent = "Live."; };
      source.onmessage = function (event) { apply(JSON.parse(event.data)); };
      source.addEventListener("reload", function () { source.close(); window.location.reload(); });
      source.onerror = function () {
        if (live) live.textContent = "Reconnecting\u2026";
        // The browser retries by itself unless the answer was not an event stream: then retry here.
        if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
      };
    }
    connect();
  }

  // -- forms -----------------------------------------------------------------------------------

  function wireForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        const text = document.getElementById(button.dataset.copy).textContent;
        const done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
        if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, function () {});
      });
    });
    // Show the fields of the chosen schedule kind / channel kind only.
    document.querySelectorAll("form.edit").forEach(function (form) {
      const radios = form.querySelectorAll("input[name=kind]");
      const select = form.querySelector("select[name=kind]");
      const sync = function () {
        if (select) form.dataset.kind = select.value;
        radios.forEach(function (r) { if (r.checked) form.dataset.kind = r.value; });
      };
      radios.forEach(function (r) { r.addEventListener("change", sync); });
      if (select) select.addEventListener("change", sync);
      sync();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireForms();
    offset = Number(document.body.dataset.now) - Date.now() / 1000;
    const table = document.getElementById("checks");
    if (table) {
      const input = document.getElementById("q");
      if (input) input.addEventListener("input", filterRows);
      filterRows();
      listen(table);
    }
    setInterval(refreshTimes, 15000);
  });
})();
