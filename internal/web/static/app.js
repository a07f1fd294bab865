// fleet dashboard: live updates over server-sent events. Hand-written, no
// build step. Pages work without it; this only keeps them current.
(function () {
  "use strict";
  var body = document.body;
  var conn = document.getElementById("conn");
  var toast = document.getElementById("toast");
  var unit = body.dataset.unit || "";
  // An instance's page also follows its template's rollout events.
  var owner = body.dataset.owner || "";
  function isRolloutEvent(type) {
    return /^rollout-/.test(type || "") || type === "batch-healthy";
  }

  function showError(msg) {
    if (!toast) { return; }
    toast.textContent = msg;
    toast.hidden = false;
    clearTimeout(showError.t);
    showError.t = setTimeout(function () { toast.hidden = true; }, 6000);
  }

  // Re-render the live parts from the server (html/template output).
  var pending = null, inflight = false, again = false;
  function refresh() {
    if (pending) { return; }
    pending = setTimeout(doRefresh, 120);
  }
  function doRefresh() {
    pending = null;
    if (inflight) { again = true; return; }
    var live = document.getElementById("live");
    if (!live || !live.dataset.fragment) { return; }
    inflight = true;
    fetch(live.dataset.fragment, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error("HTTP " + r.status)); })
      .then(function (html) { live.innerHTML = html; body.dataset.refreshed = String(Date.now()); })
      .catch(function (e) { if (conn) { conn.textContent = "refresh failed"; } console.warn(e); })
      .finally(function () { inflight = false; if (again) { again = false; refresh(); } });
  }

  // Buttons: post with fetch, then refresh in place.
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (!f.classList || !f.classList.contains("act")) { return; }
    ev.preventDefault();
    if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) { return; }
    var btn = f.querySelector("button");
    if (btn) { btn.disabled = true; btn.classList.add("busy"); }
    fetch(f.action, {
      method: "POST", body: new URLSearchParams(new FormData(f)),
      credentials: "same-origin", headers: { "X-Fleet-UI": "1" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        // The dashboard answers {"error":"..."}, the API's middleware
        // fleet's envelope {"error":{"code":N,"message":"..."}}.
        var msg = j.error && (j.error.message || j.error);
        if (!r.ok) { throw new Error(typeof msg === "string" ? msg : ("HTTP " + r.status)); }
        if (f.dataset.after && unit) { window.location.assign(f.dataset.after); return; }
        refresh();
      });
    }).catch(function (e) {
      showError(e.message);
      if (btn) { btn.disabled = false; }
    }).finally(function () { if (btn) { btn.classList.remove("busy"); } });
  });

  // Event feed.
  var feed = document.getElementById("feed");
  function addEvent(e) {
    if (!feed) { return; }
    if (unit && e.unit !== unit && !(owner && e.unit === owner && isRolloutEvent(e.type))) { return; }
    var first = feed.firstElementChild;
    if (first && first.classList.contains("muted")) { feed.removeChild(first); }
    var li = document.createElement("li");
    li.className = "t-" + String(e.type || "").replace(/\./g, "-");
    li.dataset.type = e.type || "";
    var t = document.createElement("time");
    var d = new Date(e.time);
    t.textContent = isNaN(d) ? "" : d.toLocaleTimeString();
    li.appendChild(t);
    li.appendChild(document.createTextNode(e.message || e.type));
    feed.insertBefore(li, feed.firstChild);
    while (feed.children.length > 100) { feed.removeChild(feed.lastChild); }
  }

  if (!body.dataset.events && conn) { conn.hidden = true; }
  if (body.dataset.events && window.EventSource) {
    var es = new EventSource(body.dataset.events);
    es.onopen = function () {
      if (conn) { conn.textContent = "live"; conn.className = "conn live"; }
      refresh(); // catch up on anything missed while disconnected
    };
    es.onerror = function () {
      if (conn) { conn.textContent = "reconnecting…"; conn.className = "conn down"; }
    };
    es.addEventListener("fleet", function (m) {
      var e;
      try { e = JSON.parse(m.data); } catch (err) { return; }
      addEvent(e);
      // Every event re-renders the live part, whatever its type: unit.*,
      // machine.* and the rollout events (rollout-*, batch-healthy) alike,
      // on the overview and on every unit page.
      refresh();
    });
    // A safety net for anything events do not cover (e.g. a machine's
    // metadata changing).
    setInterval(refresh, 15000);
    // A rollout's targets move without an event of their own (only
    // batches and phases have one): while a rollout shown is not over,
    // re-render more often.
    setInterval(function () {
      if (document.querySelector("#live [data-active]")) { refresh(); }
    }, 3000);
  }

  // Live journal on the unit page.
  var journal = document.getElementById("journal");
  var jstatus = document.getElementById("journal-status");
  if (journal && journal.dataset.src && window.EventSource) {
    var js = new EventSource(journal.dataset.src);
    var atBottom = function () { return journal.scrollHeight - journal.scrollTop - journal.clientHeight < 24; };
    js.addEventListener("reset", function () {
      journal.textContent = "";
      if (jstatus) { jstatus.textContent = "following"; }
    });
    js.addEventListener("line", function (m) {
      var stick = atBottom();
      var line = document.createElement("span");
      line.className = "jl";
      line.textContent = m.data + "\n";
      journal.appendChild(line);
      while (journal.childNodes.length > 2000) { journal.removeChild(journal.firstChild); }
      if (stick) { journal.scrollTop = journal.scrollHeight; }
    });
    js.addEventListener("status", function (m) {
      if (jstatus) { jstatus.textContent = m.data; }
    });
  }
})();
