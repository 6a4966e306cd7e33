// The Node.js server a user would write instead of `elmbox serve` (issue
// 26's peer): Node's own http module hosting the same Elm app (its
// JavaScript loaded once), the app's answer to each event released once the
// event is durable. fsync policy: every event is appended to LOG as a line,
// and answers wait for an fdatasync of the file that holds their line;
// events that arrive while one fdatasync runs go into the next (group
// commit), as elmbox's SQLite commits do (WAL, synchronous=FULL).
//
//   node node-server.js APP.js LOG   (prints "listening on http://127.0.0.1:PORT")
//
// POST /apps/NAME/events with the event as the body; one app, whatever NAME.
'use strict';
const fs = require('fs');
const http = require('http');

const [appPath, logPath] = process.argv.slice(2);
if (!appPath || !logPath) {
  console.error('usage: node node-server.js APP.js LOG');
  process.exit(2);
}
// Elm's output is `(function(scope){...}(this))`: run with `this` a scope.
const scope = {};
new Function(fs.readFileSync(appPath, 'utf8')).call(scope);
const app = scope.Elm.Main.init({ flags: null });

// Elm answers each event once, in order, now or after its port's
// setTimeout(0): the oldest request waiting takes the next answer.
const waiting = [];
app.ports.respond.subscribe((value) => {
  const next = waiting.shift();
  if (next) logged(next, JSON.stringify([value]));
});

const fd = fs.openSync(logPath, 'a');
let batch = [];
let syncing = false;

function logged(request, answer) {
  batch.push({ request, answer });
  if (!syncing) commit();
}

function commit() {
  const group = batch;
  batch = [];
  syncing = true;
  const lines = group.map((g) => g.request.event + '\n').join('');
  // The write lands in the page cache at once; the fdatasync, which waits
  // for the disk, runs on libuv's thread pool while more events arrive.
  try {
    fs.writeSync(fd, lines);
  } catch (error) {
    return fail(group, error);
  }
  fs.fdatasync(fd, (error) => {
    if (error) return fail(group, error);
    for (const { request, answer } of group) {
      request.res.writeHead(200, { 'content-type': 'application/json' });
      request.res.end(answer);
    }
    syncing = false;
    if (batch.length > 0) commit();
  });
}

function fail(group, error) {
  for (const { request } of group) {
    request.res.writeHead(503);
    request.res.end(String(error));
  }
  syncing = false;
  if (batch.length > 0) commit();
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || !/^\/apps\/[^/]+\/events$/.test(req.url)) {
    res.writeHead(404);
    return res.end();
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const event = Buffer.concat(chunks).toString('utf8');
    waiting.push({ res, event });
    app.ports.onEvent.send(event);
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
