// anklume dashboard: refreshes the machine cells from /api/status every
// 5 seconds. Values are written with textContent only: nothing from the
// server is ever parsed as HTML.
"use strict";
(function () {
  function fmtBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i === 0 ? n + " B" : n.toFixed(1) + " " + units[i];
  }
  function set(row, field, text) {
    var cell = row.querySelector("[data-field='" + field + "']");
    if (cell && cell.textContent !== text) { cell.textContent = text; }
    return cell;
  }
  function apply(status) {
    var rows = document.querySelectorAll("tr[data-machine]");
    var byName = {};
    (status.domains || []).forEach(function (d) {
      (d.machines || []).forEach(function (m) { byName[d.name + "/" + m.name] = m; });
    });
    rows.forEach(function (row) {
      var m = byName[row.getAttribute("data-domain") + "/" + row.getAttribute("data-machine")];
      if (!m) { return; }
      var st = set(row, "state", m.state);
      if (st) { st.className = "state-" + m.state; }
      set(row, "ip", m.ip || "-");
      set(row, "cpu", m.usage ? m.usage.cpu_seconds.toFixed(1) + " s" : "-");
      set(row, "memory", m.usage ? fmtBytes(m.usage.memory_bytes) : "-");
      set(row, "drift", m.drift ? "*" : "");
    });
    var nft = document.getElementById("nftables");
    if (nft) { nft.textContent = status.nftables === null || status.nftables === undefined ? "not checked" : status.nftables; }
  }
  function poll() {
    var note = document.getElementById("live");
    fetch("/api/status", { cache: "no-store", credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (s) {
        apply(s);
        document.body.setAttribute("data-live", "ok");
        if (note) { note.className = "meta"; note.textContent = "live, updated " + new Date().toLocaleTimeString(); }
      })
      .catch(function (e) {
        document.body.setAttribute("data-live", "error");
        if (note) { note.className = "live-error"; note.textContent = "not updating: " + e.message; }
      });
  }
  poll();
  setInterval(poll, 5000);
})();
