// The live page: one server-sent event per change of the unit's state; the tables are redrawn from it.
// The browser reconnects a dropped stream by itself (the console follows an `ivr serve` restart on its
// side); a stream refused for good (the session ended: the login page answers) reloads the page.
"use strict";

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
}

function fill(id, items, columns) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    for (const column of columns) cell(row, column(item));
    body.appendChild(row);
  }
  if (!items.length) {
    const row = document.createElement("tr");
    cell(row, "none");
    row.firstChild.colSpan = columns.length;
    row.className = "muted";
    body.appendChild(row);
  }
}

// Times as the call centre reads them: 24-hour, in the IVR's timezone, whatever the browser's settings.
const timeZone = document.getElementById("live-status").dataset.timezone;
const timeFormat = new Intl.DateTimeFormat("pt-BR", {timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit"});

function clock(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "";
}

function show(state) {
  const status = document.getElementById("live-status");
  const unit = state.unit;
  if (!unit) {
    status.textContent = state.down;
    status.className = "down";
  } else {
    const ami = unit.ami.connected ? (unit.ami.synced ? "Asterisk connected" : "Asterisk reconnecting") : "Asterisk not connected";
    const serving = state.serving ? ` · new calls take ${state.serving}` : "";
    status.textContent = `Live at ${clock(unit.at)} · ${ami}${serving}`;
    status.className = unit.ami.connected && unit.ami.synced ? "muted" : "down";
  }
  const calls = unit ? unit.calls : [];
  const queues = unit ? Object.entries(unit.queues) : [];
  fill("live-calls", calls, [c => c.protocol, c => c.caller, c => c.flow, c => c.node, c => clock(c.since), c => c.queue || ""]);
  fill("live-queues", queues, [
    ([name]) => name, ([, q]) => q.waiting, ([, q]) => `${q.longest_wait_s} s`,
    ([, q]) => q.agents.free, ([, q]) => q.agents.logged_in, ([, q]) => q.callbacks_pending,
  ]);
  fill("live-announcements", state.announcements, [a => a.id, a => a.text, a => a.scope, a => a.until]);
}

const events = new EventSource("/live/events");
events.onmessage = (event) => show(JSON.parse(event.data));
events.onerror = () => {
  const status = document.getElementById("live-status");
  status.textContent = "The console lost its connection; retrying…";
  status.className = "down";
  if (events.readyState === EventSource.CLOSED) setTimeout(() => window.location.reload(), 3000);
};
