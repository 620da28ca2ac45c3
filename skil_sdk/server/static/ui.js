/* Live progress for the skil-sdk pages: polls the JSON API (the session cookie is sent). */
(function () {
  "use strict";
  var TERMINAL = { SUCCEEDED: 1, FAILED: 1, KILLED: 1 };

  function percent(job) {
    if (job.state === "SUCCEEDED") return 100;
    var done = job.rows_done || 0, total = job.rows_total;
    if (!total) { done = job.tasks_done || 0; total = job.tasks_total; }
    if (!total) return 0;
    return Math.max(0, Math.min(100, (100 * done) / total));
  }
  function int(v) { return v === null || v === undefined ? "\u2014" : Math.round(v).toLocaleString("en-US"); }
  function rate(v) {
    if (v === null || v === undefined) return "\u2014";
    return v >= 100 ? Math.round(v).toLocaleString("en-US") : String(Number(v.toPrecision(3)));
  }
  function duration(s) {
    if (s === null || s === undefined) return "\u2014";
    var t = Math.round(s);
    if (t < 60) return t + " s";
    var m = Math.floor(t / 60), sec = t % 60;
    if (m < 60) return m + " m " + (sec < 10 ? "0" : "") + sec + " s";
    var h = Math.floor(m / 60); m = m % 60;
    return h + " h " + (m < 10 ? "0" : "") + m + " m";
  }
  function set(root, field, text) {
    var el = root.querySelector('[data-field="' + field + '"]');
    if (el && el.textContent !== text) el.textContent = text;
    return el;
  }
  function update(root, job) {
    var state = set(root, "state", job.state);
    var cls = "state-" + job.state.toLowerCase();
    if (state) state.className = "state " + cls;
    set(root, "rows", int(job.rows_done) + " / " + int(job.rows_total));
    set(root, "tasks", int(job.tasks_done) + " / " + int(job.tasks_total));
    set(root, "rate", rate(job.rows_per_second));
    set(root, "elapsed", duration(job.elapsed));
    var bar = root.querySelector('[data-field="progress"]');
    if (bar) {
      var p = percent(job);
      bar.className = "bar " + cls;
      bar.setAttribute("aria-valuenow", String(Math.round(p * 10) / 10));
      bar.querySelector("span").style.width = p.toFixed(1) + "%";
      bar.querySelector("b").textContent = Math.round(p) + " %";
    }
  }
  function poll(url, every, onData) {
    var stopped = false;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 401) { location.href = "/ui/login?next=" + encodeURIComponent(location.pathname); stopped = true; }
          return r.ok ? r.json() : null;
        })
        .then(function (data) { if (data && onData(data) === false) stopped = true; })
        .catch(function () {})
        .then(function () { if (!stopped) setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }

  var list = document.querySelector("[data-poll-jobs]");
  if (list) {
    poll(list.getAttribute("data-poll-jobs"), 1000, function (data) {
      var seen = {};
      (data.jobs || []).forEach(function (job) {
        var row = list.querySelector('tr[data-job="' + CSS.escape(job.job_id) + '"]');
        if (row) { update(row, job); seen[job.job_id] = 1; } else { seen.__new = 1; }
      });
      if (seen.__new) location.reload();
    });
  } else if (!document.querySelector("table.jobs") && location.pathname === "/ui/jobs") {
    poll("/jobs?limit=1", 2000, function (data) { if ((data.jobs || []).length) location.reload(); });
  }

  var one = document.querySelector("[data-poll-job]");
  if (one && one.getAttribute("data-finished") !== "yes") {
    poll(one.getAttribute("data-poll-job"), 1000, function (job) {
      update(one, job);
      if (TERMINAL[job.state]) { location.reload(); return false; }
    });
  }
})();
