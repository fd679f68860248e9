'use strict';
// jsii's kernel answering Python on this process's stdin and stdout, without jsii's relay process
// (see jsii_direct_kernel.py). The kernel itself is the one installed with jsii, in the lib folder beside this one.
const crypto = require('crypto');
const fs = require('fs');
const Module = require('module');
const os = require('os');
const path = require('path');
const vm = require('vm');

// The kernel reads requests from and writes responses to this descriptor, which jsii's launcher connects to itself.
const API_CHANNEL = 3;
const STDERR = 2;
const { readSync, writeSync } = fs;
// Node holds descriptors of its own from the start, this one among them; should it not, it is held here, so
// that no file the kernel opens gets the number its messages are routed by.
try {
  fs.fstatSync(API_CHANNEL);
} catch {
  fs.openSync('/dev/null', 'r');
}

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

// Node compiles every module it loads again in every process: most of aws-cdk-lib's modules a synth uses,
// cdk-nag's rules and the resource modules they test against, about a fifth of the kernel's CPU time. V8's
// code cache keeps what it compiled, as Python keeps bytecode: a module whose file is unchanged (same real
// path, size, inode and change time) runs from the cache, and V8 refuses a cache made by another version
// of itself, which is then made again. Files under the temporary directory (where the kernel unpacks
// packages when jsii's package cache is off) are compiled as usual: their paths change with every process.
const CODE_CACHE = path.join(__dirname, '..', `code-cache-${process.version}`);
const TEMPORARY = fs.realpathSync(os.tmpdir()) + path.sep;
const compiled = [];
// A module compiled here resolves import() as node's own compilation would (where node offers that).
const DYNAMIC_IMPORT = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
const { _compile: compile } = Module.prototype;

// jsii's kernel finds each package it unpacked before (in jsii's package cache) by the SHA-256 of the package's
// tarball, which it computes again in every process: aws-cdk-lib's, its AWS CLI layer's and cdk-nag's, some 60 MB
// read and hashed, a twentieth of a one-environment synth. The digest of a tarball whose file is unchanged (same
// real path, size, inode, change and modification time) is kept, as compiled code is: the kernel's own digest
// function (in its bundle, lib/program.js) asks `keptDigest` first. A bundle that no longer has that function as
// written here computes every digest as before, and a kept digest that a tarball no longer has would fail its
// extraction loudly ("was modified while it was being extracted"), never load another package.
const PACKAGE_DIGESTS = path.join(__dirname, '..', 'package-digests');
const KERNEL_BUNDLE = path.join(__dirname, '..', 'lib', 'program.js');
const DIGEST_FUNCTION = 'function digestFile(e,...p){return readFileChunks(e,()=>{},...p)}';
const KEPT_DIGEST = 'mlops.jsii-direct-kernel.keptDigest';
const DIGEST_FUNCTION_ASKING_FIRST = `function digestFile(e,...p){return globalThis[Symbol.for(${JSON.stringify(KEPT_DIGEST)})](e,p,()=>readFileChunks(e,()=>{},...p))}`;
const SHA256_BYTES = 32;

globalThis[Symbol.for(KEPT_DIGEST)] = function keptDigest(file, extra, digest) {
  let kept;
  try {
    kept = keptFileFor(PACKAGE_DIGESTS, fs.realpathSync.native(file), extra);
    const stored = fs.readFileSync(kept);
    if (stored.length === SHA256_BYTES) {
      return stored;
    }
  } catch {
    // Not kept yet (or the file cannot be identified): computed below.
  }
  const computed = digest();
  if (kept !== undefined) {
    keepWhole(kept, () => computed);
  }
  return computed;
};

// The file in `folder` that keeps what is made of the file at `real` (its real path) while that file is unchanged:
// the same path, size, inode, change and modification time, and the same `extra`.
function keptFileFor(folder, real, extra = null) {
  const stat = fs.statSync(real, { bigint: true });
  const identity = JSON.stringify([real, `${stat.size}`, `${stat.ino}`, `${stat.ctimeNs}`, `${stat.mtimeNs}`, extra]);
  return path.join(folder, crypto.createHash('sha256').update(identity).digest('hex'));
}

// Keeps what `make()` gives in `file` (making its folder), whole or not at all: another process reads all of it or
// no file. What cannot be made or written is made again by the next process.
function keepWhole(file, make) {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const staging = `${file}.${process.pid}`;
    fs.writeFileSync(staging, make());
    fs.renameSync(staging, file);
  } catch {
    // Not kept: made again next time.
  }
}

function cacheFile(filename) {
  // The system's realpath, one call for the whole path (node's own looks at each component in turn): some 900 modules.
  const real = fs.realpathSync.native(filename);
  if (real.startsWith(TEMPORARY)) {
    return undefined;
  }
  return `${keptFileFor(CODE_CACHE, real)}.bin`;
}

Module.prototype._compile = function compileWithCache(content, filename) {
  if (filename === KERNEL_BUNDLE) {
    content = content.replace(DIGEST_FUNCTION, DIGEST_FUNCTION_ASKING_FIRST);
  }
  const cached = filename.endsWith('.js') ? cacheFile(filename) : undefined;
  if (cached === undefined) {
    return compile.call(this, content, filename);
  }
  let cachedData;
  try {
    cachedData = fs.readFileSync(cached);
  } catch {
    cachedData = undefined;
  }
  let script;
  try {
    script = new vm.Script(Module.wrap(content), { filename, cachedData, importModuleDynamically: DYNAMIC_IMPORT });
  } catch {
    // What only node's own compilation accepts (a #! line, for one).
    return compile.call(this, content, filename);
  }
  if (cachedData === undefined || script.cachedDataRejected) {
    compiled.push([cached, script]);
  }
  const module = this;
  const require = (id) => module.require(id);
  require.resolve = (request, options) => Module._resolveFilename(request, module, false, options);
  require.resolve.paths = (request) => Module._resolveLookupPaths(request, module);
  require.main = process.mainModule;
  require.extensions = Module._extensions;
  require.cache = Module._cache;
  return script.runInThisContext({ displayErrors: true }).call(module.exports, module.exports, require, module, filename, path.dirname(filename));
};

// Kept once the process ends, by then with the code of every function that ran; written whole or not at all.
process.once('exit', () => {
  for (const [cached, script] of compiled) {
    keepWhole(cached, () => script.createCachedData());
  }
});

require(path.join(__dirname, '..', 'lib', 'program.js'));
