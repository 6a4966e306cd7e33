// Runs an Elm app under Node.js the way elmbox's guest does, for `make bench`:
// evaluate once as a classic script, init, subscribe, then per event send and
// run every timer due at the (virtual) current instant.
//   node node-runner.js APP.js EVENTS.txt WARMUP [--json-events]
// Prints one JSON line: { events, seconds, heapUsed, rss, lastResponse }.
'use strict';
const fs = require('fs');
const vm = require('vm');

const [appPath, eventsPath, warmupText, jsonFlag] = process.argv.slice(2);
const json = jsonFlag === '--json-events';
const events = fs.readFileSync(eventsPath, 'utf8').split('\n').filter((l) => l.length > 0);
const warmup = Number(warmupText);

// Virtual timers, ordered by deadline then arming order, like the guest's.
let now = 0, nextId = 1, armed = 0;
const timers = new Map();
function arm(callback, delay, repeat, args) {
  const id = nextId++;
  delay = Number(delay) > 0 ? Math.floor(Number(delay)) : 0;
  if (repeat) delay = Math.max(delay, 1);
  timers.set(id, { callback, args, due: now + delay, seq: armed++, period: repeat ? delay : null });
  return id;
}
globalThis.setTimeout = (f, d, ...a) => arm(f, d, false, a);
globalThis.setInterval = (f, d, ...a) => arm(f, d, true, a);
globalThis.clearTimeout = globalThis.clearInterval = (id) => { timers.delete(id); };
function settle(until) {
  for (;;) {
    let next = null, nextKey = null;
    for (const [id, t] of timers) {
      if (t.due <= until && (next === null || t.due < next.due || (t.due === next.due && t.seq < next.seq))) { next = t; nextKey = id; }
    }
    if (next === null) break;
    now = Math.max(now, next.due);
    if (next.period === null) timers.delete(nextKey);
    next.callback(...next.args);
    if (next.period !== null && timers.has(nextKey)) { next.due = now + next.period; next.seq = armed++; }
  }
  now = Math.max(now, until);
}

vm.runInThisContext(fs.readFileSync(appPath, 'utf8'), { filename: appPath });
const app = globalThis.Elm.Main.init();
let outputs = [];
app.ports.respond.subscribe((v) => outputs.push(v));
settle(now);

let last = '';
function dispatch(line) {
  outputs = [];
  app.ports.onEvent.send(json ? JSON.parse(line) : line);
  settle(now);
  last = JSON.stringify(outputs);
}
for (let i = 0; i < warmup; i++) dispatch(events[i % events.length]);
const start = process.hrtime.bigint();
for (const line of events) dispatch(line);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const memory = process.memoryUsage();
console.log(JSON.stringify({ events: events.length, seconds, heapUsed: memory.heapUsed, rss: memory.rss, lastResponse: last }));
