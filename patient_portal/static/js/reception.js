// The reception list (受付一覧) keeps itself current. An EventSource on /staff/schedule/events
// says that something of the clinic changed (a consult room, a status, a booking: never patient
// data, at most an appointment id); the page then fetches its rows again
// (/staff/schedule/rows?day=…) and swaps the table body, keeping the focus where it was.
// Changes that come together are fetched once; a hidden tab fetches when it is shown again.
// Each (re)connection starts with "ready", which fetches too: nothing that changed while the
// page was not listening is missed. Without JavaScript none of this runs and a reload shows
// the same list.
//
// When nobody has used the page for data-pause-after seconds (shorter than a staff session's
// idle limit) it stops listening, so that it does not keep a shared PC signed in by itself;
// a key, click or touch goes on. A refusal (signed out, no longer allowed) stops it for good.
(() => {
  "use strict";
  const status = document.getElementById("reception-live");
  const rows = () => document.getElementById("reception-rows");
  if (!status || !rows() || !("EventSource" in window)) return;

  const DEBOUNCE_MS = 300;
  const pauseAfter = Number(status.dataset.pauseAfter || 1500) * 1000;
  const state = {
    source: null,
    timer: null,
    fetching: false,
    again: false,
    stale: false,
    paused: false,
    stopped: false,
    planned: false,
    lastUse: Date.now(),
    updated: null,
    refreshes: 0,
  };
  window.tsunaguReception = state; // for tests and support

  function say(text) {
    status.textContent = text || "";
    status.hidden = false;
  }

  function sayLive() {
    const time = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
      hour: "2-digit",
      minute: "2-digit",
    }).format(state.updated);
    say((status.dataset.live || "").replace("%(time)s", time));
  }

  function close() {
    clearTimeout(state.timer);
    if (state.source) {
      state.source.close();
      state.source = null;
    }
  }

  function stop() {
    state.stopped = true;
    close();
    say(status.dataset.stopped);
  }

  function soon() {
    clearTimeout(state.timer);
    state.timer = setTimeout(refresh, DEBOUNCE_MS);
  }

  async function refresh() {
    if (state.stopped || state.paused) return;
    if (document.hidden) {
      state.stale = true;
      return;
    }
    if (state.fetching) {
      state.again = true;
      return;
    }
    state.fetching = true;
    state.stale = false;
    try {
      const answer = await fetch(status.dataset.rows, {
        credentials: "same-origin",
        redirect: "manual", // a redirect is to the sign-in page
        cache: "no-store",
      });
      if (answer.type === "opaqueredirect" || [401, 403, 404].includes(answer.status)) {
        stop();
        return;
      }
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      swap(await answer.text());
      state.updated = new Date();
      state.refreshes += 1;
      sayLive();
    } catch (error) {
      // The next change, or the stream's reconnection ("ready"), fetches again.
      console.warn("reception: the list could not be fetched", error.message);
    } finally {
      state.fetching = false;
      if (state.again) {
        state.again = false;
        soon();
      }
    }
  }

  // What a focused control in the rows is, so that the same control in the new rows gets it.
  function keyOf(control) {
    const chosen = control.form && control.form.elements.namedItem("status");
    return chosen ? `status:${chosen.value}` : `href:${control.getAttribute("href") || ""}`;
  }

  function focused(body) {
    const element = document.activeElement;
    const row = element && body.contains(element) && element.closest("tr[data-appointment]");
    return row ? { row: row.dataset.appointment, key: keyOf(element) } : null;
  }

  function refocus(body, target) {
    if (!target) return;
    const row = [...body.querySelectorAll("tr[data-appointment]")].find(
      (r) => r.dataset.appointment === target.row,
    );
    const control = row && [...row.querySelectorAll("a[href], button")].find(
      (c) => keyOf(c) === target.key,
    );
    if (control) control.focus();
  }

  function swap(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    const fresh = template.content.getElementById("reception-rows");
    const current = rows();
    if (!fresh || !current || fresh.innerHTML === current.innerHTML) return;
    const target = focused(current);
    current.replaceWith(fresh);
    refocus(fresh, target);
  }

  function listen() {
    if (state.source || state.stopped || state.paused) return;
    const source = new EventSource(status.dataset.events);
    state.source = source;
    source.addEventListener("ready", () => {
      state.planned = false;
      soon();
    });
    source.addEventListener("change", soon);
    source.addEventListener("bye", () => {
      state.planned = true; // the server ends each stream after a while; the browser reconnects
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        stop(); // refused (signed out, or not allowed): EventSource gives up, and so do we
      } else if (!state.planned) {
        say(status.dataset.reconnecting);
      }
    });
  }

  function used() {
    state.lastUse = Date.now();
    if (state.paused) {
      state.paused = false;
      listen(); // its "ready" fetches the rows
    }
  }

  for (const type of ["keydown", "pointerdown", "wheel", "touchstart"]) {
    document.addEventListener(type, used, { passive: true, capture: true });
  }
  setInterval(() => {
    if (!state.paused && !state.stopped && Date.now() - state.lastUse >= pauseAfter) {
      state.paused = true;
      close();
      say(status.dataset.paused);
    }
  }, 5000);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.stale) soon();
  });
  window.addEventListener("pagehide", close);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) listen(); // back from the back/forward cache
  });
  listen();
})();
