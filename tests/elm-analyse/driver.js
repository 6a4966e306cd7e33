// Drives elm-analyse's compiled Elm app (dist/app/backend-elm.js of the npm
// package elm-analyse@0.16.5, an Elm 0.19 `Platform.worker`) through one
// analysis of an Elm project held in memory, and records every port message.
//
// The driver logic (`answer`) is written once; it runs the app on one of two
// engines, so their traffic can be compared message for message:
//   node    the app in a `vm` context of this process, on a virtual clock
//           drained after each message exactly as elmbox drains its own;
//   elmbox  the app in `elmbox run --ports`, a child speaking its line
//           protocol.
//
// Usage:
//   node driver.js --app backend-elm.js --engine node|elmbox [--elmbox BIN]
//                  --project DIR|FILE.json|- [--fix TYPE,...] [--out TRANSCRIPT.json]
//   node driver.js --app backend-elm.js --replay TRANSCRIPT.json [--runs N]
// --project names a project folder (its elm.json, elm-analyse.json and .elm
// files are read into memory) or a JSON object {path: content} ("-": stdin);
// --fix names message types to fix after the analysis (see `analyse`).
// The transcript: {engine, flags, steps: [{sent, received, line}], reports,
// ...}: each message sent, what the app sent in response (the first step's
// `sent` is null: what it sent while starting), and that response's JSON text
// as elmbox printed it (on Node: as JSON.stringify writes it).
// --replay (for `make bench`) sends a transcript's inputs again on Node and
// prints how long loading and the analysis took.
'use strict';
const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const vm = require('vm');

// A fixed clock start (the tests' EPOCH_MS) and time zone: nothing in the
// run depends on when or where it happens.
const EPOCH_MS = 1700000000000;
process.env.TZ = 'UTC';
// Guards against a driver/app loop that never ends.
const MAX_STEPS = 100000;

// ---- The driver logic: what a port message asks for, answered in memory ----

// elm-analyse's flags, as its analyser.js passes them (no package registry).
function flagsFor(project) {
  return { server: false, registry: [], project: JSON.parse(project['elm.json']) };
}

// The project's source files, as util/file-gatherer.js finds them on disk:
// `.elm` files under the source directories whose path parts all start with
// a capital letter, outside elm-stuff and node_modules, sorted.
function sourceFiles(project) {
  const dirs = JSON.parse(project['elm.json'])['source-directories'] || ['src'];
  return Object.keys(project)
    .filter((file) => file.endsWith('.elm') && !/(^|\/)(elm-stuff|node_modules)\//.test(file))
    .filter((file) =>
      dirs.some((dir) => {
        const prefix = path.posix.normalize(dir + '/').replace(/^\.\//, '');
        return file.startsWith(prefix) && file.slice(prefix.length).split('/').every((part) => /^[A-Z]/.test(part));
      }))
    .sort();
}

// What fileReader.js's readFile sends: the content, its SHA-1 (the `sums`
// package's checksum), and no cached AST (there is no cache), or a failure.
function readFile(project, file) {
  const content = project[file];
  if (typeof content !== 'string') {
    return { success: false, path: file, sha1: null, content: null, ast: null };
  }
  const sha1 = crypto.createHash('sha1').update(content).digest('hex');
  return { success: true, path: file, sha1, content, ast: null };
}

// The answers to one message the app sent, as [{port, value}], as the
// package's ports/*.js give them, with no Elm package installed and no
// network: every dependency, its documentation and its cached interface are
// answered empty. Messages that only tell the host something get no answer.
function answer(project, { port, value }) {
  switch (port) {
    case 'loadContext': // ports/context.js
      return [{
        port: 'onLoadedContext',
        value: {
          sourceFiles: sourceFiles(project),
          interfaceFiles: [],
          configuration: project['elm-analyse.json'] || '',
        },
      }];
    case 'loadFile': // ports/file-loader.js
      return [{ port: 'fileContent', value: readFile(project, value) }];
    case 'loadFileContentWithSha': { // ports/file-loader.js (fixes)
      const file = readFile(project, value);
      return [{
        port: 'onFileContentWithShas',
        value: { file: { version: file.sha1, path: file.path }, content: file.content },
      }];
    }
    case 'storeFile': // ports/file-loader.js: a fix written (here in memory),
      // then the change that server/watcher.js would see on disk.
      project[value.file] = value.newContent;
      return [
        { port: 'onStoredFiles', value: true },
        { port: 'fileWatch', value: { event: 'update', file: value.file, content: null } },
      ];
    case 'loadDependencyFiles': // ports/dependency-files.js
      return [{ port: 'onDependencyFiles', value: { dependency: value, files: [] } }];
    case 'loadHttpDocumentation': // ports/http-documentation.js, offline
      return [{ port: 'onHttpDocumentation', value: { dependency: value, json: null } }];
    case 'loadRawDependency': // ports/raw-dependencies.js, nothing cached
      return [{ port: 'onRawDependency', value: { dependency: value, json: null } }];
    case 'log':
    case 'storeAstForSha':
    case 'storeRawDependency':
    case 'sendState':
    case 'sendFixedFile':
    case 'sendReportValue':
      return [];
    default:
      throw new Error(`the driver has no answer for port ${port}: ${JSON.stringify(value)}`);
  }
}

// Runs elm-analyse on `engine` as the `elm-analyse` command and its editor
// integration would: the analysis, a quick fix asked for every message of the
// first report (`onFixQuick`: the fixed file is sent back, nothing is
// written), then each fix of `fixes` (message types) applied to the first
// message of that type in the latest report (`onFixMessage`: the file is
// stored, and its change analysed again). Each incoming message is sent on
// its own, in the order the app asked, until nothing is left to send.
// `run.steps` grows as it goes, so a run that fails still shows how far it got.
async function analyse(engine, project, fixes, run) {
  const steps = run.steps;
  const queue = [];
  const heard = (sent, { received, line }) => {
    steps.push({ sent, received, line });
    for (const message of received) queue.push(...answer(project, message));
  };
  const drain = async () => {
    while (queue.length > 0) {
      if (steps.length > MAX_STEPS) throw new Error(`no end after ${MAX_STEPS} messages`);
      const message = queue.shift();
      heard(message, await engine.send(message.port, message.value));
    }
  };
  const reports = () => steps.flatMap((s) => s.received).filter((m) => m.port === 'sendReportValue').map((m) => m.value);
  heard(null, await engine.start());
  await drain();
  const first = reports()[0];
  if (first === undefined) return; // the caller sees no report
  for (const message of first.messages) {
    queue.push({ port: 'onFixQuick', value: message.id });
    await drain();
  }
  for (const type of fixes) {
    const latest = reports()[reports().length - 1];
    const target = latest.messages.find((m) => m.type === type);
    if (target === undefined) throw new Error(`no ${type} message left to fix`);
    queue.push({ port: 'onFixMessage', value: target.id });
    await drain();
  }
}

// ---- Engine 1: Node.js, on a virtual clock ----

// setTimeout/setInterval/Date on a virtual clock, with elmbox's semantics
// (guest/src/timers.rs): timers ordered by due time, then arming order;
// NaN or negative delays are 0, fractions truncate, intervals last >= 1 ms;
// `Date.now()` and `new Date()` read epoch + virtual time.
class VirtualClock {
  constructor(epochMs) {
    this.epochMs = epochMs;
    this.now = 0;
    this.nextId = 0;
    this.armed = 0;
    this.timers = new Map();
  }
  arm(callback, delay, args, repeat) {
    const ms = Number(delay);
    let wait = Number.isFinite(ms) && ms > 0 ? Math.trunc(ms) : 0;
    if (repeat) wait = Math.max(wait, 1);
    const id = ++this.nextId;
    this.timers.set(id, { callback, args, period: repeat ? wait : null, due: this.now + wait, seq: ++this.armed });
    return id;
  }
  // Runs every timer due up to `until`, earliest first, moving the clock to
  // each one's due time; timers they set that are due by then run too.
  settle(until) {
    for (;;) {
      let id = null;
      let next = null;
      for (const [key, t] of this.timers) {
        if (t.due <= until && (next === null || t.due < next.due || (t.due === next.due && t.seq < next.seq))) {
          id = key;
          next = t;
        }
      }
      if (next === null) break;
      this.now = Math.max(this.now, next.due);
      if (next.period === null) this.timers.delete(id);
      next.callback(...next.args);
      if (next.period !== null && this.timers.get(id) === next) {
        next.due = this.now + next.period;
        next.seq = ++this.armed;
      }
    }
    this.now = Math.max(this.now, until);
  }
  // The globals of a `vm` context whose timers and dates use this clock.
  context() {
    const clock = this;
    const context = vm.createContext({
      setTimeout: (f, delay, ...args) => clock.arm(f, delay, args, false),
      setInterval: (f, delay, ...args) => clock.arm(f, delay, args, true),
      clearTimeout: (id) => clock.timers.delete(id),
      clearInterval: (id) => clock.timers.delete(id),
      console: { log: console.error, info: console.error, warn: console.error, error: console.error },
      __virtualNow: () => clock.epochMs + clock.now,
    });
    // The context's own Date, read through the clock, as the guest's Proxy.
    vm.runInContext(
      `Date.now = __virtualNow; delete globalThis.__virtualNow;
       Date = new Proxy(Date, {
         construct(D, args, target) { return Reflect.construct(D, args.length ? args : [D.now()], target); },
         apply(D) { return new D(D.now()).toString(); },
       });`,
      context);
    return context;
  }
}

// The app evaluated once as a classic script, started with the flags, every
// outgoing port subscribed; each message sent, then the clock settled at the
// current instant, as elmbox does with --advance-ms 0.
class NodeEngine {
  constructor(appJs, module, flags) {
    this.appJs = appJs;
    this.module = module;
    this.flags = flags;
  }
  async start() {
    return this.load();
  }
  load() {
    this.clock = new VirtualClock(EPOCH_MS);
    const context = this.clock.context();
    vm.runInContext(this.appJs, context, { filename: 'backend-elm.js' });
    // Values go in as elmbox passes them: parsed from JSON inside the app's
    // own realm, so they are the context's plain objects and arrays.
    const parse = vm.runInContext('JSON.parse', context);
    this.fromJson = (value) => parse(JSON.stringify(value));
    const app = context.Elm[this.module].init({ flags: this.fromJson(this.flags) });
    this.ports = app.ports;
    this.received = [];
    for (const name of Object.keys(app.ports).sort()) {
      if (typeof app.ports[name].subscribe === 'function') {
        // Values are recorded as JSON, as elmbox serialises them.
        app.ports[name].subscribe((value) => this.received.push({ port: name, value: JSON.parse(JSON.stringify(value)) }));
      }
    }
    return this.settle();
  }
  // What the app sent since the last call, and that as elmbox would print
  // it (JSON.stringify writes the same text as QuickJS's).
  settle() {
    this.clock.settle(this.clock.now);
    const received = this.received;
    this.received = [];
    return { received, line: JSON.stringify(received) };
  }
  async send(port, value) {
    return this.sendNow(port, value);
  }
  sendNow(port, value) {
    const target = this.ports[port];
    if (!target || typeof target.send !== 'function') throw new Error(`no incoming port ${port}`);
    target.send(this.fromJson(value));
    return this.settle();
  }
  async close() {
    return { status: 0, stderr: '' };
  }
}

// ---- Engine 2: elmbox run --ports, a child process ----

// Each message is one stdin line; each stdout line is the answer to the
// next message (the first one: what the app sent while starting).
class ElmboxEngine {
  constructor(bin, appPath, module, flags) {
    this.child = childProcess.spawn(bin, [
      'run', appPath, '--module', module, '--ports',
      '--flags', JSON.stringify(flags), '--epoch-ms', String(EPOCH_MS),
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.stderr = '';
    this.child.stderr.on('data', (chunk) => { this.stderr += chunk; });
    this.exited = new Promise((resolve) => this.child.on('close', (status) => resolve(status)));
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }
  async next() {
    const line = await this.lines.next();
    if (line.done) {
      const status = await this.exited;
      throw new Error(`elmbox stopped answering (exit status ${status}); its stderr:\n${this.stderr}`);
    }
    return { received: JSON.parse(line.value), line: line.value };
  }
  async start() {
    return this.next();
  }
  async send(port, value) {
    this.child.stdin.write(JSON.stringify({ port, value }) + '\n');
    return this.next();
  }
  async close() {
    this.child.stdin.end();
    return { status: await this.exited, stderr: this.stderr };
  }
}

// ---- The command line ----

// A project folder's elm.json, elm-analyse.json and .elm files, by relative
// path, or a JSON object of them.
function readProject(where) {
  if (where === '-') return JSON.parse(fs.readFileSync(0, 'utf8'));
  if (fs.statSync(where).isFile()) return JSON.parse(fs.readFileSync(where, 'utf8'));
  const project = {};
  const walk = (dir) => {
    for (const entry of fs.readdirSync(path.join(where, dir), { withFileTypes: true }).sort((a, b) => a.name < b.name ? -1 : 1)) {
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory() && entry.name !== 'elm-stuff' && entry.name !== 'node_modules') walk(rel);
      else if (entry.isFile() && (rel.endsWith('.elm') || rel === 'elm.json' || rel === 'elm-analyse.json')) {
        project[rel] = fs.readFileSync(path.join(where, rel), 'utf8');
      }
    }
  };
  walk('');
  return project;
}

function options(argv) {
  const opts = { module: 'Analyser', runs: 1 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (argv[i + 1] === undefined) throw new Error(`--${key} needs a value`);
    opts[key] = argv[i + 1];
  }
  if (!opts.app) throw new Error('--app backend-elm.js is required');
  return opts;
}

async function record(opts) {
  const project = readProject(opts.project);
  const flags = flagsFor(project);
  const engine = opts.engine === 'elmbox'
    ? new ElmboxEngine(opts.elmbox || 'elmbox', opts.app, opts.module, flags)
    : opts.engine === 'node'
      ? new NodeEngine(fs.readFileSync(opts.app, 'utf8'), opts.module, flags)
      : null;
  if (engine === null) throw new Error('--engine node|elmbox');
  const run = { steps: [], error: null };
  const started = process.hrtime.bigint();
  try {
    await analyse(engine, project, opts.fix ? opts.fix.split(',') : [], run);
  } catch (e) {
    run.error = String(e.stack || e);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const { status, stderr } = await engine.close();
  const received = run.steps.flatMap((s) => s.received);
  return {
    engine: opts.engine,
    flags,
    ...run,
    reports: received.filter((m) => m.port === 'sendReportValue').map((m) => m.value),
    messagesIn: run.steps.length - 1,
    messagesOut: received.length,
    seconds,
    exitStatus: status,
    stderr,
  };
}

// Sends a transcript's inputs again, on Node, timing loading and analysis
// apart (best of --runs), and checks every answer against the transcript.
function replay(opts) {
  const transcript = JSON.parse(fs.readFileSync(opts.replay, 'utf8'));
  const inputs = transcript.steps.slice(1).map((s) => s.sent);
  const appJs = fs.readFileSync(opts.app, 'utf8');
  const best = { loadSeconds: Infinity, analysisSeconds: Infinity };
  for (let run = 0; run < Number(opts.runs); run++) {
    const engine = new NodeEngine(appJs, opts.module, transcript.flags);
    let t = process.hrtime.bigint();
    engine.load();
    best.loadSeconds = Math.min(best.loadSeconds, Number(process.hrtime.bigint() - t) / 1e9);
    t = process.hrtime.bigint();
    const answers = inputs.map((input) => engine.sendNow(input.port, input.value));
    best.analysisSeconds = Math.min(best.analysisSeconds, Number(process.hrtime.bigint() - t) / 1e9);
    answers.forEach(({ line }, i) => {
      if (line !== transcript.steps[i + 1].line) throw new Error(`message ${i + 1} was answered differently from the transcript`);
    });
  }
  const memory = process.memoryUsage();
  return { ...best, messages: inputs.length, heapUsed: memory.heapUsed, rss: memory.rss };
}

async function main() {
  const opts = options(process.argv.slice(2));
  const result = opts.replay ? replay(opts) : await record(opts);
  const text = JSON.stringify(result) + '\n';
  if (opts.out) fs.writeFileSync(opts.out, text);
  else process.stdout.write(text);
}

main().catch((e) => {
  console.error(`driver: ${e.stack || e}`);
  process.exit(1);
});
