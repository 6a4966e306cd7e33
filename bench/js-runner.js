// Runs an Elm app under Node.js, or under QuickJS's own `qjs --std`, the way
// elmbox's guest does, for `make bench`: evaluate once as a classic script,
// init, subscribe, then per event send and run every timer due at the
// (virtual) current instant.
//   node js-runner.js APP.js EVENTS.txt WARMUP [--json-events]
//   qjs --std js-runner.js APP.js EVENTS.txt WARMUP [--json-events]
// Prints one JSON line: { events, seconds, heapUsed, rss, lastResponse }
// (heapUsed on Node only).
'use strict';

// What differs between the two engines: files, the clock, global evaluation.
const onNode = typeof process !== 'undefined';
const host = onNode
  ? {
      args: process.argv.slice(2),
      read: (path) => require('fs').readFileSync(path, 'utf8'),
      evalGlobal: (source, file) => require('vm').runInThisContext(source, { filename: file }),
      seconds: () => Number(process.hrtime.bigint()) / 1e9,
      memory: () => ({ heapUsed: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss }),
    }
  : {
      args: scriptArgs.slice(1),
      read: (path) => std.loadFile(path),
      evalGlobal: (source) => std.evalScript(source),
      seconds: () => os.now() / 1e3,
      memory: () => {
        // /proc files report no size, which std.loadFile relies on.
        const file = std.open('/proc/self/status', 'r');
        const status = file ? file.readAsString() : '';
        if (file) file.close();
        const rss = /VmRSS:\s+(\d+) kB/.exec(status);
        return { rss: rss ? Number(rss[1]) * 1024 : null };
      },
    };

const [appPath, eventsPath, warmupText, jsonFlag] = host.args;
const json = jsonFlag === '--json-events';
const events = host.read(eventsPath).split('\n').filter((l) => l.length > 0);
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

host.evalGlobal(host.read(appPath), appPath);
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
const start = host.seconds();
for (const line of events) dispatch(line);
const seconds = host.seconds() - start;
const memory = host.memory();
console.log(JSON.stringify({ events: events.length, seconds, heapUsed: memory.heapUsed, rss: memory.rss, lastResponse: last }));
