'use strict';
// jsii's kernel answering Python on this process's stdin and stdout, without jsii's relay process
// (see jsii_direct_kernel.py). The kernel itself is the one installed with jsii, in ../lib.
const fs = require('fs');

// The kernel reads requests from and writes responses to this descriptor, which jsii's launcher connects to itself.
const API_CHANNEL = 3;
const STDERR = 2;
const { readSync, writeSync } = fs;

// Started by the launcher, the kernel links the packages it loads into its node_modules with symbolic links,
// which only resolve when node preserves them; without both, it copies every file of every package on every
// start. NODE_PRESERVE_SYMLINKS=1 (set by the Python side) made node's module resolution preserve them; this
// flag is what the kernel checks. Processes the kernel starts resolve modules as node does by default.
process.execArgv.push('--preserve-symlinks');
delete process.env.NODE_PRESERVE_SYMLINKS;

// The launcher hands everything the kernel prints to Python as JSON lines on stderr ({"stdout": <base64>} or
// {"stderr": <base64>}), which jsii's Python side decodes and prints; stdout now carries the responses, so
// printed output goes the same way.
function printLine(stream, bytes) {
  writeSync.call(fs, STDERR, `${JSON.stringify({ [stream]: bytes.toString('base64') })}\n`);
}

for (const [stream, name] of [[process.stdout, 'stdout'], [process.stderr, 'stderr']]) {
  stream.write = (chunk, encoding, callback) => {
    printLine(name, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8'));
    const done = typeof encoding === 'function' ? encoding : callback;
    if (typeof done === 'function') {
      process.nextTick(done);
    }
    return true;
  };
}

fs.readSync = function readFromPython(fd, ...rest) {
  return readSync.call(this, fd === API_CHANNEL ? 0 : fd, ...rest);
};

fs.writeSync = function writeToPython(fd, data, ...rest) {
  if (fd === API_CHANNEL) {
    return writeSync.call(this, 1, data, ...rest);
  }
  // The kernel's own error lines (written whole, from an offset) reach Python as the launcher relayed them.
  if (fd === STDERR && Buffer.isBuffer(data)) {
    const offset = typeof rest[0] === 'number' ? rest[0] : 0;
    const length = typeof rest[1] === 'number' ? rest[1] : data.length - offset;
    printLine('stderr', data.subarray(offset, offset + length));
    return length;
  }
  return writeSync.call(this, fd, data, ...rest);
};

require('../lib/program.js');
