// Pure helpers of the benchmark: percentiles, per-window and per-bucket
// request statistics, and smoothd's own overhead in a reload, derived from
// the daemon's JSON log. No I/O here, so test/bench/quick.test.ts can check
// every function with made-up data.

/** Kinds of a load-generator record (one per request). */
export const KIND = Object.freeze({
  OK: 0, // 2xx response
  NON_2XX: 1, // a response with another status
  ERROR: 2, // connection error (refused, reset) with a request outstanding
  TIMEOUT: 3, // no response within the load generator's timeout
  DROPPED: 4, // the server closed the connection while a request was pending
  HUNG: 5, // still unanswered when the load stopped, older than the hang limit
  UNSENT: 6, // open loop: due but never sent, still queued for a connection when the load stopped
});

export const KIND_NAMES = ['ok', 'non2xx', 'errors', 'timeouts', 'dropped', 'hung', 'unsent'];

/**
 * Nearest-rank percentile of an ascending array: the smallest value such that
 * at least p% of the values are <= it. NaN for an empty array.
 */
export function percentile(sorted, p) {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (p <= 0) return sorted[0];
  if (p >= 100) return sorted[n - 1];
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n, Math.max(1, rank)) - 1];
}

/** Ascending copy of numbers as a Float64Array (fast numeric sort). */
export function sortedCopy(values) {
  const a = Float64Array.from(values);
  a.sort();
  return a;
}

export function median(values) {
  return percentile(sortedCopy(values), 50);
}

/** {min, median, max, mean} of plain numbers; NaNs when empty. */
export function spread(values) {
  const s = sortedCopy(values);
  if (s.length === 0) return { min: NaN, median: NaN, max: NaN, mean: NaN, n: 0 };
  let sum = 0;
  for (const v of s) sum += v;
  return { min: s[0], median: percentile(s, 50), max: s[s.length - 1], mean: sum / s.length, n: s.length };
}

/**
 * Statistics of the requests that ended in [from, to) (ms), optionally only
 * those inside one of `windows` ([{from, to}]). Latency percentiles are over
 * 2xx responses (as autocannon reports them); failures count every other kind.
 * records: {t: Float64Array (end time, ms), lat: Float32Array (ms), kind: Uint8Array, n}.
 */
export function windowStats(records, from, to, windows = null) {
  const lats = [];
  const byKind = new Array(KIND_NAMES.length).fill(0);
  let covered = to - from;
  if (windows) covered = windows.reduce((s, w) => s + Math.max(0, Math.min(to, w.to) - Math.max(from, w.from)), 0);
  for (let i = 0; i < records.n; i++) {
    const t = records.t[i];
    if (t < from || t >= to) continue;
    if (windows && !inWindows(t, windows)) continue;
    const k = records.kind[i];
    byKind[k] += 1;
    if (k === KIND.OK) lats.push(records.lat[i]);
  }
  const s = sortedCopy(lats);
  const failed = byKind.reduce((a, b) => a + b, 0) - byKind[KIND.OK];
  const seconds = covered / 1000;
  return {
    requests: byKind.reduce((a, b) => a + b, 0),
    ok: byKind[KIND.OK],
    failed,
    failures: Object.fromEntries(KIND_NAMES.slice(1).map((name, i) => [name, byKind[i + 1]])),
    seconds,
    rps: seconds > 0 ? byKind[KIND.OK] / seconds : NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s.length > 0 ? s[s.length - 1] : NaN,
  };
}

export function inWindows(t, windows) {
  for (const w of windows) if (t >= w.from && t < w.to) return true;
  return false;
}

/**
 * Cuts [from, to) into buckets of bucketMs and gives, per bucket: its start
 * (ms since `from`), 2xx responses per second, p99 latency of those (ms) and
 * the number of failed requests.
 */
export function buckets(records, from, to, bucketMs) {
  const n = Math.max(1, Math.ceil((to - from) / bucketMs));
  const lats = Array.from({ length: n }, () => []);
  const failed = new Array(n).fill(0);
  for (let i = 0; i < records.n; i++) {
    const t = records.t[i];
    if (t < from || t >= to) continue;
    const b = Math.floor((t - from) / bucketMs);
    if (records.kind[i] === KIND.OK) lats[b].push(records.lat[i]);
    else failed[b] += 1;
  }
  return lats.map((l, b) => {
    const s = sortedCopy(l);
    const width = Math.min(bucketMs, to - (from + b * bucketMs));
    return { t: b * bucketMs, rps: (s.length * 1000) / width, p99: percentile(s, 99), failed: failed[b] };
  });
}

/**
 * Latency around events: for every anchor time (epoch ms) it takes the 2xx
 * requests SCHEDULED in [anchor + fromMs, anchor + toMs) (end time minus
 * latency: the open loop measures from the schedule) and puts each into a bin
 * of binMs by its offset from the anchor; per bin over all anchors: the
 * offset, the number of requests and their p50/p99. So "where inside a reload
 * do the slow requests fall" reads off one line: at spawn time (boot CPU), at
 * ready (a cold worker's first requests), at the drain (reconnects).
 */
export function alignedProfile(records, anchors, fromMs, toMs, binMs) {
  const n = Math.max(1, Math.ceil((toMs - fromMs) / binMs));
  const lats = Array.from({ length: n }, () => []);
  const sorted = [...anchors].sort((a, b) => a - b);
  for (let i = 0; i < records.n; i++) {
    if (records.kind[i] !== KIND.OK) continue;
    const scheduled = records.t[i] - records.lat[i];
    for (const a of sorted) {
      const off = scheduled - a;
      if (off < fromMs) break;
      if (off >= toMs) continue;
      lats[Math.floor((off - fromMs) / binMs)].push(records.lat[i]);
    }
  }
  return lats.map((l, b) => {
    const s = sortedCopy(l);
    return { offsetMs: fromMs + b * binMs, requests: s.length, p50: percentile(s, 50), p99: percentile(s, 99) };
  });
}

// ---------------------------------------------------------------- overhead

/**
 * smoothd's own time in one reload, from its JSON log (pino lines, parsed).
 *
 * A reload is a chain of steps smoothd takes (start a new worker, signal an
 * old one, end the reload) and of waits on workers: a new worker's
 * start-to-ready and an old worker's drain (from 'stopping worker' to
 * 'worker exited'). A new worker's start-to-ready is the `startupMs` its
 * 'worker ready' line reports: from smoothd's decision to spawn it (which
 * includes the spawn() call, i.e. fork and exec of the wrapper) to the ready
 * message. The critical path is walked back from the reload's end: each step
 * was triggered by the latest worker event ('worker ready' or 'worker
 * exited') logged before it, or by the reload request itself. Every gap on
 * that path between a trigger and the step it caused is smoothd's own time:
 * reading and checking the config, handling the event, deciding, logging. So
 * durationMs = workerMs (the waits on the path) + overheadMs, exactly.
 *
 * The spawn() calls are reported on their own (spawnMs: from the decision to
 * the 'worker started' line, logged once spawn() has returned), and
 * overheadInclSpawnMs counts those on the path as smoothd's time as well.
 *
 * entries: parsed log lines in log order, each with `time` (ISO) and `msg`.
 * startMs/endMs: the reload report's startedAt/finishedAt (epoch ms); reloadId its id.
 * Returns null when the log does not show a complete reload.
 */
export function reloadOverhead(entries, startMs, endMs, reloadId = null) {
  // The reload's lines: between its 'reload started' and 'reload <state>' lines
  // when reloadId is given and both are there (log order: a line can carry a
  // time a little after finishedAt when the daemon was preempted between
  // taking the time and writing the line), else by time.
  let from = 0;
  let to = entries.length;
  if (reloadId !== null) {
    const a = entries.findIndex((e) => e.reloadId === reloadId && typeof e.msg === 'string' && e.msg.startsWith('reload started'));
    const b = entries.findIndex((e, i) => i > a && e.reloadId === reloadId && /^reload (succeeded|failed|aborted)$/.test(e.msg));
    if (a >= 0 && b > a) {
      from = a;
      to = b;
    }
  }
  const byIndex = from > 0 || to < entries.length;
  const ev = [];
  for (const e of entries.slice(from, to)) {
    const t = Date.parse(e.time);
    if (!byIndex && !(t >= startMs - 1 && t <= endMs + 1)) continue;
    if (e.msg === 'worker started') ev.push({ t, type: 'started', id: e.workerId });
    else if (e.msg === 'worker ready') ev.push({ t, type: 'ready', id: e.workerId, startupMs: e.startupMs });
    else if (e.msg === 'stopping worker') ev.push({ t, type: 'stopping', id: e.workerId });
    else if (e.msg === 'worker exited') ev.push({ t, type: 'exited', id: e.workerId });
  }
  const startedIdx = new Map();
  const stoppingIdx = new Map();
  ev.forEach((e, i) => {
    if (e.type === 'started') startedIdx.set(e.id, i);
    if (e.type === 'stopping') stoppingIdx.set(e.id, i);
  });
  const triggerBefore = (i) => {
    for (let j = i - 1; j >= 0; j--) if (ev[j].type === 'ready' || ev[j].type === 'exited') return j;
    return -1;
  };
  // The decision to spawn a worker: its ready time minus its startupMs (else its 'worker started' line).
  const decidedAt = (readyEv, startedEv) => (typeof readyEv.startupMs === 'number' ? Math.min(startedEv.t, readyEv.t - readyEv.startupMs) : startedEv.t);
  const path = [];
  let overheadMs = 0;
  let workerMs = 0;
  let spawnOnPathMs = 0;
  let node = { t: endMs, i: ev.length, label: 'reload finished' };
  for (let guard = 0; guard < 10_000; guard++) {
    const j = triggerBefore(node.i);
    if (j < 0) {
      const gap = Math.max(0, node.t - startMs);
      overheadMs += gap;
      path.unshift({ smoothdMs: gap, from: 'reload requested', to: node.label });
      break;
    }
    const trig = ev[j];
    const gap = Math.max(0, node.t - trig.t);
    overheadMs += gap;
    const begin = trig.type === 'ready' ? startedIdx.get(trig.id) : stoppingIdx.get(trig.id);
    if (begin === undefined || begin > j) return null; // the wait began before the reload: not ours
    const beginT = trig.type === 'ready' ? decidedAt(trig, ev[begin]) : ev[begin].t;
    if (trig.type === 'ready') spawnOnPathMs += ev[begin].t - beginT;
    const wait = trig.t - beginT;
    workerMs += wait;
    path.unshift(
      { workerMs: wait, what: trig.type === 'ready' ? `worker ${trig.id} start-to-ready` : `worker ${trig.id} drain` },
      { smoothdMs: gap, from: `worker ${trig.id} ${trig.type}`, to: node.label },
    );
    node = { t: beginT, i: begin, label: `${trig.type === 'ready' ? 'spawn' : 'signal'} worker ${trig.id}` };
  }
  const spawnMs = [];
  for (const e of ev) {
    if (e.type !== 'ready') continue;
    const s = startedIdx.get(e.id);
    if (s !== undefined) spawnMs.push(ev[s].t - decidedAt(e, ev[s]));
  }
  const replaced = ev.filter((e) => e.type === 'exited').length;
  const firstStart = ev.find((e) => e.type === 'started');
  const firstReady = firstStart ? ev.find((e) => e.type === 'ready' && e.id === firstStart.id) : undefined;
  return {
    durationMs: endMs - startMs,
    overheadMs,
    workerMs,
    replaced,
    overheadPerWorkerMs: replaced > 0 ? overheadMs / replaced : NaN,
    overheadInclSpawnMs: overheadMs + spawnOnPathMs,
    overheadInclSpawnPerWorkerMs: replaced > 0 ? (overheadMs + spawnOnPathMs) / replaced : NaN,
    /** From the request to the decision to spawn the first worker: reading and checking the config. */
    configMs: firstStart ? (firstReady ? decidedAt(firstReady, firstStart) : firstStart.t) - startMs : NaN,
    spawnMs,
    path,
  };
}

// ---------------------------------------------------------------- /proc

/** utime + stime (clock ticks) from the text of /proc/PID/stat. */
export function cpuTicks(statText) {
  // The command name (field 2) may contain spaces; fields after it are fixed.
  const rest = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  return Number(rest[11]) + Number(rest[12]); // fields 14 and 15
}

/** cutime + cstime (clock ticks: children waited for) from the text of /proc/PID/stat. */
export function childTicks(statText) {
  const rest = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  return Number(rest[13]) + Number(rest[14]); // fields 16 and 17
}

/** {busy, total} clock ticks of all CPUs from the text of /proc/stat (busy excludes idle and iowait). */
export function machineTicks(procStatText) {
  const f = procStatText.split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/** Values in kB of the named lines of /proc/PID/status or smaps_rollup text. */
export function procKb(text, names) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m && names.includes(m[1])) out[m[1]] = Number(m[2]);
  }
  return out;
}
