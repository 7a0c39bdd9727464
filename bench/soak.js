// Chaos soak: npm run soak [-- MINUTES]  (default 10; not part of npm test).
//
// Starts a real smoothd (dist/) with 4 Node workers of examples/hello on
// 127.0.0.1:0 and, for the whole run:
//   - 64 keep-alive clients of load (loopback only), every request recorded;
//   - a reload every 3 s (JSON-RPC `reload` with wait: its report comes back);
//   - a kill -9 of a random ready worker every 5 s (while no reload rolls, so
//     the kill tests crash recovery, not a failed roll);
//   - now and then a burst of 3-6 SIGHUPs (each asks for a reload: they coalesce).
// Then it stops smoothd with SIGTERM and asserts:
//   - failed requests = 0, apart from those in flight on a killed worker:
//     a failure counts as the kill's when the connection's last answer came
//     from the killed pid, or it is a new connection (no answer yet) opened
//     before the kill and failed after it. Every other failure is listed with
//     its evidence: when it was sent, the pid that last answered on its
//     connection, how long that connection had been idle, and whether a
//     reload was stopping that pid (class "draining");
//   - every reload succeeded (one that joined a queued follow-up gets that
//     one's report; SIGHUP reloads are read from smoothd's log);
//   - smoothd's RSS (/proc/PID/status VmRSS), heap after a full GC (smoothd
//     has no RPC for that: it runs with node --inspect=127.0.0.1:0 and the soak
//     asks V8 over the inspector for a GC, then for process.memoryUsage()),
//     open fds (/proc/PID/fd) and child count are flat from minute 2 to the
//     end: the last third of that window stays within the bounds printed from
//     its first third;
//   - no zombie child left unreaped: a worker just killed is a zombie until
//     smoothd handles its SIGCHLD, so a zombie counts only when the same one
//     is still there at the next sample, 2 s later; no worker alive after the stop.
// Exit 0 when every check holds, 1 otherwise.
import { spawn } from 'node:child_process';
import WebSocket from 'ws';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rpc as rpcCall } from './rpc.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const minutes = Number(process.argv[2] ?? 10);
if (!Number.isFinite(minutes) || minutes <= 0) {
  console.error(`soak: the run length must be a positive number of minutes (flatness is measured from minute 2: give 3 or more), got ${JSON.stringify(process.argv[2])}.\n  usage: npm run soak -- 3`);
  process.exit(64);
}
const RUN_MS = minutes * 60_000;
const CLIENTS = 64;
const WORKERS = 4;
const SURGE = 4;
const KILL_WINDOW_MS = 1000;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-soak-'));
const socket = path.join(dir, 'ctl.sock');
const configPath = path.join(dir, 'smoothd.yaml');
fs.writeFileSync(
  configPath,
  `groups:
  web:
    command: [${JSON.stringify(process.execPath)}, server.js]
    cwd: ${JSON.stringify(path.join(ROOT, 'examples/hello'))}
    count: ${WORKERS}
    listen: ["127.0.0.1:0"]
    ready: ipc
    readyTimeout: 20s
    stopTimeout: 10s
    rolling: { surge: ${SURGE} }
`,
);

const t0 = Date.now();
const el = () => ((Date.now() - t0) / 1000).toFixed(1);
const log = (m) => console.log(`[${el()}s] ${m}`);

// ------------------------------------------------------------ the daemon

const daemon = spawn(process.execPath, ['--inspect=127.0.0.1:0', path.join(ROOT, 'bin/smoothd.js'), '--config', configPath, '--socket', socket, '--log-format', 'json'], {
  stdio: ['ignore', 'pipe', 'pipe'],
});
const DPID = daemon.pid;
const logs = [];
const gcs = []; // { t, heapMB } after a full GC asked over the inspector
let stderr = '';
let inspectorUrl = null;
let out = '';
daemon.stdout.on('data', (b) => {
  out += b.toString();
  let nl;
  while ((nl = out.indexOf('\n')) >= 0) {
    const line = out.slice(0, nl);
    out = out.slice(nl + 1);
    try {
      const entry = JSON.parse(line);
      entry.seenAt = Date.now();
      logs.push(entry);
    } catch {
      /* not a log line */
    }
  }
});
daemon.stderr.on('data', (b) => {
  stderr += b.toString();
  inspectorUrl ??= /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(stderr)?.[1] ?? null;
});

/** The daemon's heap after a full GC, in MB, through the V8 inspector. */
let inspector = null;
let cdpId = 0;
const cdpWaiting = new Map();
async function cdp(method, params = {}) {
  if (!inspector) {
    inspector = new WebSocket(inspectorUrl);
    inspector.on('message', (m) => {
      const msg = JSON.parse(m.toString());
      cdpWaiting.get(msg.id)?.(msg);
      cdpWaiting.delete(msg.id);
    });
    await new Promise((resolve, reject) => inspector.once('open', resolve).once('error', reject));
  }
  const id = ++cdpId;
  return new Promise((resolve) => {
    cdpWaiting.set(id, resolve);
    inspector.send(JSON.stringify({ id, method, params }));
  });
}
async function heapAfterGc() {
  await cdp('HeapProfiler.collectGarbage');
  const r = await cdp('Runtime.evaluate', { expression: 'process.memoryUsage().heapUsed', returnByValue: true });
  return r.result.result.value / 1048576;
}
const exited = new Promise((resolve) => daemon.once('exit', (code, signal) => resolve({ code, signal })));

const rpc = (method, params = {}, timeoutMs = 60_000) => rpcCall(socket, method, params, timeoutMs);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > end) throw new Error(`soak: timed out waiting for ${what}`);
    await sleep(100);
  }
}

// ------------------------------------------------------------ /proc

function stat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]), start: rest[19] };
  } catch {
    return null;
  }
}
function children(ppid) {
  const kids = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const s = stat(Number(e));
    if (s && s.ppid === ppid) kids.push({ pid: Number(e), ...s });
  }
  return kids;
}
const rssMB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const fdCount = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;

// ------------------------------------------------------------ load

const kills = []; // { t, pid }
const killedPids = new Set();
const rec = { ok: 0, non2xx: 0, failures: [] };
let loadOn = true;
const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });

/**
 * One request. Each failure records what an operator needs to explain it:
 * when the request was sent and failed, the pid that last answered on its
 * connection (examples/hello says its pid in the body), how many answers that
 * connection had carried and how long it had been idle when this request went
 * out on it.
 */
function once(port) {
  return new Promise((resolve) => {
    let sock = null;
    let sentAt = Date.now();
    let idleMs = null;
    let reused = false;
    let gotResponse = false;
    let failed = false;
    const fail = (what) => {
      if (failed) return;
      failed = true;
      rec.failures.push({ t: Date.now(), sentAt, what, pid: sock?.smoothdPid ?? null, reused, idleMs, answers: sock?.smoothdAnswers ?? 0, gotResponse });
      resolve();
    };
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      gotResponse = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        const m = / pid (\d+) /.exec(body);
        if (m && sock) sock.smoothdPid = Number(m[1]);
        if (sock) {
          sock.smoothdAnswers = (sock.smoothdAnswers ?? 0) + 1;
          sock.smoothdIdleFrom = Date.now();
        }
        if (res.statusCode === 200) rec.ok++;
        else {
          rec.non2xx++;
          fail(`HTTP ${res.statusCode}`);
          return;
        }
        resolve();
      });
      res.on('error', (e) => fail(e.code ?? e.message));
    });
    req.on('socket', (s) => {
      sock = s;
      sentAt = Date.now();
      reused = (s.smoothdAnswers ?? 0) > 0;
      idleMs = reused && s.smoothdIdleFrom ? sentAt - s.smoothdIdleFrom : null;
    });
    req.setTimeout(15_000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => fail(e.code ?? e.message));
  });
}
async function client(port) {
  while (loadOn) await once(port);
}

// ------------------------------------------------------------ chaos

const reloads = []; // results of RPC reloads
const samples = []; // { t, rss, fds, kids, zombies }
const seenWorkers = new Map(); // pid -> start time, for the stray check
let lastZombies = new Set(); // `${pid}:${start}` of the previous sample's zombies
let transientZombies = 0;
const lingeringZombies = [];
let chaosOn = true;

async function readyWorkers() {
  const s = await rpc('status');
  return { s, pids: s.groups.flatMap((g) => g.workers.filter((w) => w.state === 'ready' && w.pid).map((w) => w.pid)) };
}

async function reloader() {
  while (chaosOn) {
    await sleep(3000);
    if (!chaosOn) break;
    rpc('reload', { wait: true }, 120_000).then(
      (r) => reloads.push({ id: r.id, state: r.state, error: r.error }),
      (e) => reloads.push({ id: null, state: 'rpc error', error: e.message }),
    );
  }
}

async function killer() {
  while (chaosOn) {
    await sleep(5000);
    if (!chaosOn) break;
    // Kill while no reload rolls, so that the kill is a crash to recover from, not a failed roll.
    for (let i = 0; i < 100 && chaosOn; i++) {
      const { s, pids } = await readyWorkers();
      if (s.daemon.state === 'running' && pids.length > 0) {
        const pid = pids[Math.floor(Math.random() * pids.length)];
        const kill = { t: Date.now(), pid, sentUntil: 0 };
        kills.push(kill);
        killedPids.add(pid);
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* it exited on its own meanwhile */
        }
        kill.sentUntil = Date.now(); // the worker is dead from here on: it accepts nothing later

        break;
      }
      await sleep(50);
    }
  }
}

let hups = 0;
async function hupper() {
  while (chaosOn) {
    await sleep(10_000 + Math.random() * 20_000);
    if (!chaosOn) break;
    const n = 3 + Math.floor(Math.random() * 4);
    for (let i = 0; i < n; i++) {
      process.kill(DPID, 'SIGHUP');
      hups++;
      await sleep(Math.random() * 50);
    }
  }
}

async function sampler() {
  while (chaosOn) {
    const kids = children(DPID);
    for (const k of kids) if (!seenWorkers.has(k.pid)) seenWorkers.set(k.pid, k.start);
    const zombies = new Set(kids.filter((k) => k.state === 'Z').map((k) => `${k.pid}:${k.start}`));
    for (const z of zombies) {
      if (lastZombies.has(z)) lingeringZombies.push(z);
      else transientZombies++;
    }
    lastZombies = zombies;
    samples.push({ t: Date.now() - t0, rss: rssMB(DPID), fds: fdCount(DPID), kids: kids.length, zombies: kids.filter((k) => k.state === 'Z').length });
    if (samples.length % 5 === 0) gcs.push({ t: Date.now() - t0, heapMB: await heapAfterGc() });
    await sleep(2000);
  }
}

// ------------------------------------------------------------ run

const problems = [];
try {
  await waitFor('smoothd to report every worker ready', async () => logs.some((l) => l.msg === 'every worker is ready'));
  const st = await rpc('status');
  const bound = st.groups[0].listen[0].bound;
  const port = Number(bound.slice(bound.lastIndexOf(':') + 1));
  log(`smoothd pid ${DPID} serving on ${bound}; ${minutes} min, ${CLIENTS} keep-alive clients, reload every 3 s, kill -9 every 5 s, SIGHUP bursts`);
  const loaders = Array.from({ length: CLIENTS }, () => client(port));
  const chaos = [reloader(), killer(), hupper(), sampler()];
  const progress = setInterval(() => log(`${rec.ok} ok, ${rec.failures.length} failed, ${reloads.length} reloads, ${kills.length} kills, ${hups} SIGHUPs`), 30_000);
  await sleep(RUN_MS);
  chaosOn = false;
  await Promise.all(chaos);
  // Let the last reloads end before the load stops, so a reload still rolling is not cut by the stop.
  await waitFor('the last reloads to answer', async () => (await rpc('status')).daemon.state === 'running', 120_000);
  await sleep(500);
  loadOn = false;
  await Promise.all(loaders);
  clearInterval(progress);
  agent.destroy();
  inspector?.close();
} catch (err) {
  problems.push(`soak aborted: ${err.message}`);
}

// Stop smoothd, then look for what outlived it.
const beforeStop = children(DPID);
for (const k of beforeStop) if (!seenWorkers.has(k.pid)) seenWorkers.set(k.pid, k.start);
process.kill(DPID, 'SIGTERM');
const ex = await Promise.race([exited, sleep(60_000).then(() => null)]);
if (ex === null) {
  problems.push('smoothd did not exit within 60 s of SIGTERM');
  process.kill(DPID, 'SIGKILL');
} else if (ex.code !== 0) problems.push(`smoothd exited ${JSON.stringify(ex)}: ${stderr.slice(-500)}`);
const strays = [...seenWorkers].filter(([pid, start]) => stat(pid)?.start === start);
for (const [pid] of strays) {
  problems.push(`worker ${pid} outlived smoothd (${stat(pid)?.state === 'Z' ? 'zombie' : 'running'}); killing it`);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

// ------------------------------------------------------------ verdict

// Each failure gets one class, by evidence, strongest first:
//   killed       the pid that last answered on its connection was killed before it failed;
//   killed, new  a new connection (no answer yet, so no pid) opened before a kill and failed
//                after it: the killed worker may have accepted it (the workers share one listen
//                socket, so a connection opened after the kill cannot have been its);
//   reused after idle close  the connection's pid was being stopped by a reload ('stopping worker'
//                logged), the request was sent on a reused connection and got no answer, and
//                that worker exited 0 unkilled: the kit closes a connection itself only when it
//                is idle, so the request met that close (crossed it on the wire, or was sent
//                after it by a client that had not read the close yet; retryable, RFC 9112 §9.3.1);
//   draining     any other failure on a connection of a worker a reload was stopping;
//   other        none of these (failures within KILL_WINDOW_MS of a kill are marked so, not excused).
const pidEvents = new Map(); // pid -> { stoppingAt, exitedAt, code, signal }
for (const l of logs) {
  if (typeof l.pid !== 'number') continue;
  // smoothd's own time of the line (the soak may read its stdout late on a loaded machine).
  const at = Number.isFinite(Date.parse(l.time)) ? Date.parse(l.time) : l.seenAt;
  const e = pidEvents.get(l.pid) ?? {};
  if (l.msg === 'stopping worker') e.stoppingAt ??= at;
  if (l.msg === 'worker exited' || l.msg === 'worker crashed') {
    e.exitedAt ??= at;
    e.code = l.code;
    e.signal = l.signal;
  }
  if (l.msg === 'worker did not stop in time; killing it') e.sigkillAt ??= at;
  pidEvents.set(l.pid, e);
}
const killOf = new Map(kills.map((k) => [k.pid, k.t]));
function classify(f) {
  if (f.pid !== null && killOf.has(f.pid) && killOf.get(f.pid) <= f.t) return 'killed';
  const e = f.pid === null ? undefined : pidEvents.get(f.pid);
  if (e?.stoppingAt !== undefined && e.stoppingAt <= f.t) {
    // The kit closes a connection itself only when it is idle (or at its drain timeout, exit 1):
    // a worker that then exited 0 unkilled closed this one as idle: the request met that close.
    const idleClose = !f.gotResponse && f.reused && e.code === 0 && e.sigkillAt === undefined;
    return idleClose ? 'reused after idle close' : 'draining';
  }
  if (f.pid === null && !f.reused && kills.some((k) => f.sentAt <= k.sentUntil && f.t >= k.t)) return 'killed, new';
  return 'other';
}
for (const f of rec.failures) f.cls = classify(f);
const onKilled = rec.failures.filter((f) => f.cls === 'killed' || f.cls === 'killed, new');
const crossed = rec.failures.filter((f) => f.cls === 'reused after idle close');
const draining = rec.failures.filter((f) => f.cls === 'draining');
const other = rec.failures.filter((f) => f.cls === 'other');
console.log('');
const byPid = onKilled.filter((f) => f.cls === 'killed').length;
console.log(
  `requests: ${rec.ok} ok, ${rec.failures.length} failed: ${onKilled.length} in flight on a killed worker ` +
    `(${byPid} on a connection the killed pid answered, ${onKilled.length - byPid} on a new connection opened before a kill), ` +
    `${crossed.length} sent on a reused connection as a draining worker closed it idle, ` +
    `${draining.length} other on a connection of a worker a reload was stopping, ${other.length} other`,
);
if (crossed.length > 0) {
  // Not a lost answer: the worker never saw the request. No server can prevent a client reusing
  // an idle keep-alive connection as it is closed; HTTP/1.1 clients retry it (RFC 9112 §9.3.1).
  // Counted and shown, not failed: the soak's Node http.Agent does not retry.
  const idle = crossed.map((f) => f.idleMs).sort((a, b) => a - b);
  const afterExit = crossed.filter((f) => f.sentAt > pidEvents.get(f.pid).exitedAt).length;
  console.log(
    `  reused after idle close (retryable, RFC 9112 §9.3.1): ${crossed.length}, ${afterExit} of them sent after the worker had exited; client-side idle before sending ` +
      `${idle[0]}-${idle.at(-1)} ms (median ${idle[Math.floor(idle.length / 2)]}); first at ${((crossed[0].t - t0) / 1000).toFixed(1)} s`,
  );
  for (const f of crossed.slice(0, 3)) console.log(describe(f));
}
/** One line per failure that is not a kill's: what a reader needs to tell the cause. */
function describe(f) {
  const e = f.pid === null ? undefined : pidEvents.get(f.pid);
  const rel = (t) => (t === undefined ? '-' : `${t - f.t >= 0 ? '+' : ''}${t - f.t} ms`);
  const lastKill = kills.filter((k) => k.t <= f.t).at(-1);
  return (
    `  at ${((f.t - t0) / 1000).toFixed(3)} s ${f.what} (sent ${f.t - f.sentAt} ms before, ${f.gotResponse ? 'after' : 'before'} the response head) ` +
    `pid ${f.pid ?? '?'}: ${f.reused ? `reused connection, ${f.answers} answers, idle ${f.idleMs} ms` : 'new connection'}; ` +
    `pid stopping ${rel(e?.stoppingAt)}, exited ${rel(e?.exitedAt)} (${e?.code ?? '-'}/${e?.signal ?? '-'})${e?.sigkillAt ? `, SIGKILLed ${rel(e.sigkillAt)}` : ''}; ` +
    `last kill ${lastKill ? `${f.t - lastKill.t} ms before${f.t - lastKill.t <= KILL_WINDOW_MS ? ` (within ${KILL_WINDOW_MS} ms)` : ''}` : 'none'}`
  );
}
for (const [name, list] of [['draining', draining], ['other', other]]) {
  if (list.length === 0) continue;
  problems.push(`${list.length} failed requests ${name === 'draining' ? 'on connections of a worker a reload was stopping' : 'not explained by a kill'}`);
  const kinds = {};
  for (const f of list) kinds[f.what] = (kinds[f.what] ?? 0) + 1;
  console.log(`  ${name} failures: ${JSON.stringify(kinds)}; first at ${((list[0].t - t0) / 1000).toFixed(1)} s`);
  for (const f of list.slice(0, 20)) console.log(describe(f));
}

const started = logs.filter((l) => l.msg === 'reload started: reading the config').length;
const queuedLogs = logs.filter((l) => l.msg === 'reload queued behind the running one').length;
const finished = logs.filter((l) => typeof l.msg === 'string' && /^reload (succeeded|failed|aborted)$/.test(l.msg));
const badFinished = finished.filter((l) => l.msg !== 'reload succeeded');
const ids = new Set(reloads.map((r) => r.id));
const badRpc = reloads.filter((r) => r.state !== 'succeeded');
console.log(
  `reloads: ${reloads.length} requested over RPC (${reloads.length - ids.size} joined a queued follow-up), ${hups} SIGHUPs; ` +
    `smoothd ran ${started} reloads (${queuedLogs} queued), ${finished.length - badFinished.length} succeeded, ${badFinished.length} not`,
);
for (const r of badRpc.slice(0, 5)) problems.push(`reload ${r.id} answered ${r.state}: ${r.error}`);
for (const l of badFinished.slice(0, 5)) problems.push(`smoothd log: ${l.msg} ${l.reloadId ?? ''} ${l.error ?? ''}`);
if (started !== finished.length) problems.push(`${started} reloads started but ${finished.length} finished`);
console.log(`kills: ${kills.length} (kill -9 of a ready worker)`);

const from = 120_000;
const win = samples.filter((s) => s.t >= from);
const max = (a, k) => Math.max(...a.map((x) => x[k]));
const min = (a, k) => Math.min(...a.map((x) => x[k]));
/** Flat: the last third of the window stays within the first third's maximum + slack. */
function flat(name, all, k, slack, unit) {
  const third = Math.max(1, Math.floor(all.length / 3));
  const a = all.slice(0, third);
  const b = all.slice(-third);
  const bound = max(a, k) + slack;
  const verdict = max(b, k) <= bound ? 'flat' : 'GROWS';
  console.log(`${name}: ${min(all, k).toFixed(1)}-${max(all, k).toFixed(1)}${unit} from minute 2 (${all.length} samples); last third max ${max(b, k).toFixed(1)} <= first third max ${max(a, k).toFixed(1)} + ${slack}${unit}: ${verdict}`);
  if (verdict !== 'flat') problems.push(`${name} grows: ${max(b, k).toFixed(1)} > ${bound.toFixed(1)}${unit}`);
  slope(name, all, k, slack, unit);
}
/**
 * First/last value and the least-squares slope per minute over the window. The bound is the same slack
 * spread over the window: a slope that would add more than `slack` between minute 2 and the end is a
 * MISS, so a steady leak too slow to push the last third over the first third's maximum still shows.
 */
function slope(name, all, k, slack, unit) {
  const xs = all.map((s) => s.t / 60_000);
  const ys = all.map((s) => s[k]);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  const perMin = den > 0 ? num / den : 0;
  const spanMin = xs[xs.length - 1] - xs[0];
  const bound = spanMin > 0 ? slack / spanMin : Infinity;
  const verdict = perMin <= bound ? 'PASS' : 'MISS';
  console.log(
    `  ${name}: first ${ys[0].toFixed(1)}${unit} at ${xs[0].toFixed(1)} min, last ${ys[ys.length - 1].toFixed(1)}${unit} at ${xs[xs.length - 1].toFixed(1)} min; ` +
      `slope ${perMin >= 0 ? '+' : ''}${perMin.toFixed(3)}${unit}/min <= ${bound.toFixed(3)}${unit}/min (${slack}${unit} over ${spanMin.toFixed(1)} min): ${verdict}`,
  );
  if (verdict !== 'PASS') problems.push(`${name} slope ${perMin.toFixed(3)}${unit}/min > ${bound.toFixed(3)}${unit}/min`);
}
if (win.length < 6) problems.push(`only ${win.length} samples after minute 2: run longer`);
else {
  flat('daemon RSS', win, 'rss', 8, ' MB');
  flat('daemon open fds', win, 'fds', 4, '');
}
const gcWin = gcs.filter((g) => g.t >= from);
if (gcWin.length >= 3) flat('daemon heap after full GC', gcWin, 'heapMB', 1, ' MB');
else problems.push(`only ${gcWin.length} heap samples after minute 2: run longer`);
const kidsMax = max(samples, 'kids');
console.log(
  `daemon children: ${win.length ? min(win, 'kids') : '?'}-${win.length ? max(win, 'kids') : '?'} from minute 2 (bound ${WORKERS + SURGE} = count + surge); ` +
    `zombies: ${transientZombies} seen in the instant before smoothd reaped them, ${lingeringZombies.length} still unreaped 2 s later`,
);
if (kidsMax > WORKERS + SURGE) problems.push(`${kidsMax} children > count + surge ${WORKERS + SURGE}`);
if (lingeringZombies.length > 0) problems.push(`zombie children left unreaped for 2 s or more: ${[...new Set(lingeringZombies)].join(', ')}`);
console.log(`after the stop: exit ${ex?.code ?? 'none'}, ${strays.length} of ${seenWorkers.size} workers seen still alive`);

fs.rmSync(dir, { recursive: true, force: true });
if (problems.length > 0) {
  console.log(`\nsoak FAILED:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('\nsoak passed');
