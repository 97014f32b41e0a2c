// Proctor dashboard: live refresh of the runs table and of a run page, and
// the confirmation dialogs of the run page's actions. Plain JavaScript, no
// build step, nothing loaded from elsewhere.
"use strict";

(function () {
  const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TERMINATED"]);
  const PERIOD_MS = 1000;

  // Poll `url` into `box` every PERIOD_MS while the tab is visible; `done`
  // (after each refresh) returning true stops the polling.
  function poll(box, url, done) {
    let timer = null;
    let busy = false;
    async function tick() {
      timer = null;
      if (document.hidden || busy) { schedule(); return; }
      busy = true;
      try {
        const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (answer.ok) {
          box.innerHTML = await answer.text();
          if (done()) { return; }
        }
      } catch (err) {
        // the server is gone or restarting: try again at the next tick
      } finally {
        busy = false;
      }
      schedule();
    }
    function schedule() { if (timer === null) { timer = setTimeout(tick, PERIOD_MS); } }
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { schedule(); } });
    schedule();
  }

  function runStatus() {
    const el = document.getElementById("run-status");
    return el ? el.dataset.status : null;
  }

  function setUpRunsPage() {
    const box = document.getElementById("runs-live");
    if (box && box.dataset.live) { poll(box, box.dataset.live, function () { return false; }); }
  }

  function setUpRunPage() {
    const box = document.getElementById("run-live");
    if (!box || !box.dataset.live) { return; }
    function finished() {
      if (!TERMINAL.has(runStatus())) { return false; }
      // The run ended while the page was open: its buttons go (an open
      // dialog is closed; its form stays in the DOM, hidden).
      const actions = document.getElementById("actions");
      if (actions) {
        for (const d of actions.querySelectorAll("dialog[open]")) { d.close(); }
        actions.hidden = true;
      }
      return true;
    }
    if (!finished()) { poll(box, box.dataset.live, finished); }
  }

  function setUpDialogs() {
    for (const [button, dialog] of [["cancel-button", "cancel-dialog"], ["terminate-button", "terminate-dialog"]]) {
      const b = document.getElementById(button);
      const d = document.getElementById(dialog);
      if (b && d) { b.addEventListener("click", function () { d.showModal(); }); }
    }
    for (const close of document.querySelectorAll("dialog .close")) {
      close.addEventListener("click", function () { close.closest("dialog").close(); });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpRunsPage();
    setUpRunPage();
    setUpDialogs();
  });
})();
