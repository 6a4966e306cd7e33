// Runs a program (tests/all/managers.rs writes it) as a classic script and,
// once its timers are done, prints the trace it kept, one JSON array.
//   node run.js PROGRAM.js
'use strict';
const source = require('fs').readFileSync(process.argv[2], 'utf8');
require('vm').runInThisContext(source, { filename: process.argv[2] });
process.on('exit', () => process.stdout.write(JSON.stringify(globalThis.elmboxTrace) + '\n'));
