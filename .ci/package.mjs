#!/usr/bin/env node
// CI proof that the npm package installs and runs, the way an operator meets it:
//   npm pack of a clean checkout (the git-tracked files, no dist/)
//   -> npm install -g --prefix TMP TARBALL  (dependencies from the registry)
//   TMP/bin/smoothd with the packaged examples/hello on a free port and a temp socket,
//   then TMP/bin/smoothctl status, reload, stop, checking each exit code and that the
//   example answers HTTP before and after the reload.
// Usage: node .ci/package.mjs   (from anywhere; exits 0 when every check holds)
// Everything it starts is killed by pid when a check fails; the temp folder is removed
// unless SMOOTHD_KEEP_TMP=1.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-package-'));
const prefix = path.join(tmp, 'prefix');
const socket = path.join(tmp, 'ctl.sock');
const started = Date.now();

/** pids to kill (and their process groups) if a check fails. */
const pids = new Set();

function step(msg) {
  console.log(`== package: ${msg} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function fail(msg) {
  throw new Error(msg);
}

/** Run a program to its end; never rejects, gives code, stdout and stderr. */
function run(file, args, opts = {}) {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 64 << 20, timeout: 300_000, ...opts }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr, signal: err?.signal ?? null });
    });
  });
}

function expectExit(what, r, code) {
  if (r.code !== code) {
    fail(`${what}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}, expected ${code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
}

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function get(port) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET http://127.0.0.1:${port}/ timed out`)));
    req.on('error', reject);
  });
}

async function expectHello(port, generation) {
  const r = await get(port);
  const want = new RegExp(`^hello from worker \\d+ pid \\d+ generation ${generation} \\(release dev\\)\\n$`);
  if (r.status !== 200 || !want.test(r.body)) {
    fail(`GET http://127.0.0.1:${port}/ answered ${r.status} ${JSON.stringify(r.body)}, expected 200 matching ${want}`);
  }
  return r.body.trim();
}

/** `promise`, or `fallback` after `ms`; the timer never holds the process open. */
function within(ms, promise, fallback) {
  let timer;
  const late = new Promise((resolve) => (timer = setTimeout(resolve, ms, fallback)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const ctl = (args) => run(path.join(prefix, 'bin', 'smoothctl'), ['--socket', socket, ...args], { cwd: tmp });

async function main() {
  step(`npm ${(await run('npm', ['--version'])).stdout.trim()}, node ${process.version}, in ${tmp}`);

  // A clean checkout: the tracked files only, so no dist/ from an earlier build
  // can hide a package that would ship without one; node_modules is the checkout's.
  const checkout = path.join(tmp, 'checkout');
  const tracked = await run('git', ['-C', ROOT, 'ls-files', '-z']);
  expectExit('git ls-files', tracked, 0);
  for (const f of tracked.stdout.split('\0').filter(Boolean)) {
    if (!fs.existsSync(path.join(ROOT, f))) continue; // deleted in the work tree
    fs.mkdirSync(path.dirname(path.join(checkout, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(checkout, f));
  }
  if (fs.existsSync(path.join(checkout, 'dist'))) fail('dist/ is tracked by git; it must come from the build');
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(checkout, 'node_modules'));

  step('npm pack of the clean checkout (prepack builds dist/)');
  const pack = await run('npm', ['pack', '--pack-destination', tmp], { cwd: checkout });
  expectExit('npm pack', pack, 0);
  const tarball = path.join(tmp, pack.stdout.trim().split('\n').pop());
  if (!fs.existsSync(tarball)) fail(`npm pack did not write ${tarball}\n${pack.stdout}`);

  // What ships: the programs, their compiled code, the unit files, the example,
  // README and LICENSE; no sources, tests, bench, node_modules or source maps.
  const listing = await run('tar', ['-tzf', tarball]);
  expectExit('tar -tzf', listing, 0);
  const files = listing.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
  const must = ['package.json', 'README.md', 'LICENSE', 'bin/smoothd.js', 'bin/smoothctl.js', 'dist/cli/smoothd.js',
    'dist/cli/smoothctl.js', 'dist/worker/index.js', 'dist/worker/index.d.ts', 'systemd/smoothd.service',
    'systemd/smoothd.socket', 'examples/hello/server.js', 'examples/hello/smoothd.yaml'];
  const missing = must.filter((f) => !files.includes(f));
  if (missing.length > 0) fail(`the tarball lacks ${missing.join(', ')}`);
  const allowed = /^(package\.json|README\.md|LICENSE|bin\/[^/]+\.js|dist\/.+\.(js|d\.ts)|systemd\/smoothd\.(service|socket)|examples\/hello\/[^/]+)$/;
  const stray = files.filter((f) => !allowed.test(f));
  if (stray.length > 0) fail(`the tarball ships files it should not: ${stray.join(', ')}`);
  step(`${path.basename(tarball)}: ${files.length} files, ${(fs.statSync(tarball).size / 1024).toFixed(0)} kB`);

  step(`npm install -g --prefix ${prefix} ${path.basename(tarball)}`);
  const install = await run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', tarball], { cwd: tmp });
  process.stdout.write(install.stdout);
  process.stdout.write(install.stderr);
  expectExit('npm install -g', install, 0);
  const pkgDir = path.join(prefix, 'lib', 'node_modules', 'smoothd');
  const addon = path.join(pkgDir, 'node_modules', 'unix-dgram', 'build', 'Release', 'unix_dgram.node');
  step(`installed; unix-dgram (ready: notify) ${fs.existsSync(addon) ? 'built' : 'NOT built: ready: notify will be refused'}`);

  // The packaged example as shipped, on a free port: only the address changes,
  // and cwd points at the example's folder since the config lives in tmp.
  const example = path.join(pkgDir, 'examples', 'hello');
  const shipped = fs.readFileSync(path.join(example, 'smoothd.yaml'), 'utf8');
  const config = shipped
    .replace('listen: ["127.0.0.1:8080"]', 'listen: ["127.0.0.1:0"]')
    .replace(/^(\s+)command: .*$/m, (line, indent) => `${line}\n${indent}cwd: ${JSON.stringify(example)}`);
  if (!config.includes('"127.0.0.1:0"') || !config.includes('cwd: ')) {
    fail(`examples/hello/smoothd.yaml changed shape; adapt .ci/package.mjs:\n${shipped}`);
  }
  const configPath = path.join(tmp, 'smoothd.yaml');
  fs.writeFileSync(configPath, config);

  const check = await run(path.join(prefix, 'bin', 'smoothd'), ['--config', configPath, '--check'], { cwd: tmp });
  expectExit('smoothd --check', check, 0);

  step('starting the installed smoothd');
  const daemon = spawn(path.join(prefix, 'bin', 'smoothd'), ['--config', configPath, '--socket', socket, '--log-format', 'json'], {
    cwd: tmp,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  pids.add(daemon.pid);
  const out = [];
  const exited = new Promise((resolve) => daemon.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve) => {
    let buf = '';
    daemon.stdout.on('data', (b) => {
      buf += b.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        out.push(line);
        try {
          const entry = JSON.parse(line);
          if (typeof entry.pid === 'number' && entry.workerId !== undefined) pids.add(entry.pid);
          if (entry.msg === 'every worker is ready') resolve(true);
        } catch {
          // a worker's plain line; kept in `out`
        }
      }
    });
  });
  daemon.stderr.on('data', (b) => out.push(b.toString()));
  const first = await within(
    60_000,
    Promise.race([ready, exited.then((e) => fail(`smoothd exited during start (${JSON.stringify(e)}):\n${out.join('\n')}`))]),
    false,
  );
  if (!first) fail(`smoothd did not report every worker ready within 60 s:\n${out.join('\n')}`);

  const status = await ctl(['status']);
  expectExit('smoothctl status', status, 0);
  process.stdout.write(status.stdout);
  const json = await ctl(['status', '--json']);
  expectExit('smoothctl status --json', json, 0);
  const doc = JSON.parse(json.stdout);
  for (const w of doc.groups.flatMap((g) => g.workers)) if (w.pid) pids.add(w.pid);
  const bound = doc.groups[0]?.listen[0]?.bound;
  const port = Number(/:(\d+)$/.exec(bound ?? '')?.[1]);
  if (!port) fail(`status --json has no bound port: ${json.stdout}`);
  const oldPids = doc.groups[0].workers.map((w) => w.pid);
  step(`before reload: ${await expectHello(port, 1)}`);

  const reload = await ctl(['reload']);
  expectExit('smoothctl reload', reload, 0);
  process.stdout.write(reload.stdout);
  const after = JSON.parse((await ctl(['status', '--json'])).stdout);
  for (const w of after.groups.flatMap((g) => g.workers)) if (w.pid) pids.add(w.pid);
  step(`after reload: ${await expectHello(port, 2)}`);
  const stillOld = oldPids.filter(alive);
  if (stillOld.length > 0) fail(`old workers ${stillOld.join(', ')} still run after the reload`);

  const stop = await ctl(['stop']);
  expectExit('smoothctl stop', stop, 0);
  const end = await within(30_000, exited, null);
  if (!end) fail('smoothd still runs 30 s after smoothctl stop returned');
  if (end.code !== 0) fail(`smoothd exited ${JSON.stringify(end)} after stop, expected 0:\n${out.join('\n')}`);
  const left = [...pids].filter(alive);
  if (left.length > 0) fail(`processes left after stop: ${left.join(', ')}`);
  step('status, reload and stop from the installed package: all exit 0');
}

function cleanup() {
  // Only pids still alive: a dead one's number may already belong to another process.
  for (const pid of [...pids].filter(alive)) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  if (process.env.SMOOTHD_KEEP_TMP !== '1') fs.rmSync(tmp, { recursive: true, force: true });
}

try {
  await main();
  cleanup();
  step('ok');
} catch (err) {
  cleanup();
  console.error(`== package: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
