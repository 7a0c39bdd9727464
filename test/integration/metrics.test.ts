/**
 * Metrics (DESIGN §11) with real workers and real load: the values after a
 * reload that succeeded and after one that was rolled back, the HTTP listener
 * (GET /metrics only), `smoothctl metrics`, `promtool check metrics`, start
 * and reload errors of `metrics.listen`, `status.reloads`, and the heap of a
 * smoothd scraped every 100 ms.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { busyPort, cleanup, type Daemon, FIXTURES, rpc, smoothctl, startDaemon, startLoad, tempDir, waitFor } from './harness.js';
import { config, group, release } from './releases.js';

const GC_PROBE = path.join(FIXTURES, 'gc-probe.mjs');
afterEach(cleanup);

function request(port: number, method: string, p: string): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one sample, e.g. value(text, 'smoothd_workers{group="web",state="ready"}'); undefined when absent. */
function value(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

function portOf(bound: string): number {
  return Number(bound.slice(bound.lastIndexOf(':') + 1));
}

async function webWithMetrics(dir: string, extra = ''): Promise<{ d: Daemon; port: number; metricsPort: number }> {
  const yaml = `metrics: { listen: "127.0.0.1:0" }\n` + config(group(dir, { count: 3, listen: ['127.0.0.1:0'], extra }));
  const d = await startDaemon(yaml, { dir });
  const s = await d.status();
  expect(s.daemon.metrics.listen).toBe('127.0.0.1:0');
  return { d, port: portOf(s.groups[0].listen[0].bound), metricsPort: portOf(s.daemon.metrics.bound) };
}

/** promtool check metrics on a document; null when promtool is not installed (the caller skips with a reason). */
function promtool(text: string): { code: number | null; out: string } | null {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return null;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('metrics after one reload under load', () => {
  it('count the reload, its duration, the ready workers and the requests; promtool accepts them', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d, port, metricsPort } = await webWithMetrics(dir);
    const load = startLoad(port, { concurrency: 8 });
    await waitFor('some responses', () => load.ok > 50);
    release(dir, 'v2', { REVISION: 'abc123 "quoted"\\path\n' });
    const r = await smoothctl(d.socket, ['reload']);
    expect(r.code).toBe(0);
    // The workers report their counters about once a second: wait for the new generation's.
    await waitFor('request counters of generation 2', async () => (value((await request(metricsPort, 'GET', '/metrics')).body, 'smoothd_worker_requests_total{group="web",generation="2"}') ?? 0) > 0, 10_000);
    await load.stop();
    const res = await request(metricsPort, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = res.body;
    expect(value(text, 'smoothd_workers{group="web",state="ready"}')).toBe(3);
    for (const st of ['starting', 'stopping', 'backoff']) expect(value(text, `smoothd_workers{group="web",state="${st}"}`)).toBe(0);
    expect(value(text, 'smoothd_reloads_total{result="succeeded"}')).toBe(1);
    for (const res2 of ['failed', 'rolled_back', 'aborted']) expect(value(text, `smoothd_reloads_total{result="${res2}"}`)).toBe(0);
    expect(value(text, 'smoothd_last_reload_successful')).toBe(1);
    expect(value(text, 'smoothd_reload_in_progress')).toBe(0);
    expect(value(text, 'smoothd_reload_duration_seconds_count')).toBe(1);
    expect(value(text, 'smoothd_reload_duration_seconds_bucket{le="+Inf"}')).toBe(1);
    expect(value(text, 'smoothd_reload_duration_seconds_sum')).toBeGreaterThan(0);
    expect(value(text, 'smoothd_generation{group="web"}')).toBe(2);
    expect(text).toContain('smoothd_release_info{group="web",generation="2",revision="abc123 \\"quoted\\"\\\\path"} 1');
    // 3 workers at start + 3 in the reload became ready; the 3 old ones were stopped, none killed.
    expect(value(text, 'smoothd_worker_ready_seconds_count{group="web"}')).toBe(6);
    expect(value(text, 'smoothd_drain_seconds_count{group="web"}')).toBe(3);
    expect(value(text, 'smoothd_worker_exits_total{group="web",reason="stopped"}')).toBe(3);
    expect(value(text, 'smoothd_worker_exits_total{group="web",reason="crashed"}')).toBe(0);
    expect(value(text, 'smoothd_drain_kills_total{group="web"}')).toBe(0);
    // Generation 1's workers exited: their last counters stay in its total.
    const gen1 = value(text, 'smoothd_worker_requests_total{group="web",generation="1"}')!;
    const gen2 = value(text, 'smoothd_worker_requests_total{group="web",generation="2"}')!;
    expect(gen1).toBeGreaterThan(0);
    expect(gen2).toBeGreaterThan(0);
    expect(gen1 + gen2).toBeLessThanOrEqual(load.ok + load.failed);
    expect(value(text, 'smoothd_worker_errors_total{group="web",generation="2"}')).toBe(0);
    expect(value(text, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(value(text, 'process_open_fds')).toBeGreaterThan(3);
    expect(value(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    const st = await d.status();
    expect(value(text, `smoothd_build_info{version="${st.daemon.version}",node="${process.version}"}`)).toBe(1);
    expect(value(text, 'smoothd_start_time_seconds')).toBeCloseTo(Date.parse(st.daemon.startedAt) / 1000, 0);
    // The last success is this reload's end, after the start.
    expect(value(text, 'smoothd_last_reload_success_timestamp_seconds')).toBeCloseTo(Date.parse(st.reload.finishedAt) / 1000, 0);
    expect(value(text, 'smoothd_last_reload_success_timestamp_seconds')!).toBeGreaterThan(value(text, 'smoothd_start_time_seconds')!);

    // smoothctl metrics prints the same document (counters as of its own moment).
    const ctl = await smoothctl(d.socket, ['metrics']);
    expect(ctl.code).toBe(0);
    expect(value(ctl.stdout, 'smoothd_reloads_total{result="succeeded"}')).toBe(1);
    expect(ctl.stdout.split('\n').filter((l) => l.startsWith('# TYPE')).map((l) => l.split(' ')[2])).toEqual(
      text.split('\n').filter((l) => l.startsWith('# TYPE')).map((l) => l.split(' ')[2]),
    );

    // status.reloads: the report, newest first.
    const s = await d.status();
    expect(s.reloads.map((x: { state: string }) => x.state)).toEqual(['succeeded']);
    // The per-generation series are exactly the generations of the group's status history.
    const gens = (name: string): number[] =>
      text.split('\n').filter((l) => l.startsWith(`${name}{group="web",`)).map((l) => Number(/generation="(\d+)"/.exec(l)![1])).sort((a, b) => a - b);
    const hist = s.groups[0].history.map((h: { generation: number }) => h.generation).sort((a: number, b: number) => a - b);
    expect(hist).toEqual([1, 2]);
    expect(gens('smoothd_worker_requests_total')).toEqual(hist);
    expect(gens('smoothd_worker_errors_total')).toEqual(hist);

    const check = promtool(text);
    if (check === null) console.log('SKIPPED promtool check: promtool is not installed (Debian: apt-get install --no-install-recommends prometheus)');
    else expect(check, check.out).toEqual({ code: 0, out: '' });
  }, 60_000);
});

describe('metrics after a failed reload that was rolled back', () => {
  it('say rolled_back and last_reload_successful 0; status.reloads lists both reports newest first', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d, port, metricsPort } = await webWithMetrics(dir, '    verify: { bake: 2s, maxErrorRate: 0.05, minRequests: 20 }\n');
    const load = startLoad(port, { concurrency: 16 });
    await waitFor('some responses', () => load.ok > 50);
    release(dir, 'v2', { 'status.txt': '500' });
    const r = await smoothctl(d.socket, ['reload', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).rollback.state).toBe('succeeded');
    // A refused config is a failed reload too.
    fs.writeFileSync(d.configPath, 'groups: { web: { count: -1 } }\n');
    const refused = await smoothctl(d.socket, ['reload']);
    expect(refused.code).toBe(1);
    await load.stop();
    const text = (await request(metricsPort, 'GET', '/metrics')).body;
    expect(value(text, 'smoothd_reloads_total{result="rolled_back"}')).toBe(1);
    expect(value(text, 'smoothd_reloads_total{result="failed"}')).toBe(1);
    expect(value(text, 'smoothd_reloads_total{result="succeeded"}')).toBe(0);
    expect(value(text, 'smoothd_last_reload_successful')).toBe(0);
    expect(value(text, 'smoothd_reload_duration_seconds_count')).toBe(2);
    expect(value(text, 'smoothd_generation{group="web"}')).toBe(1);
    expect(value(text, 'smoothd_workers{group="web",state="ready"}')).toBe(3);
    expect(value(text, 'smoothd_worker_errors_total{group="web",generation="2"}')).toBeGreaterThan(0);
    const s = await d.status();
    expect(s.reloads.map((x: { id: number; state: string }) => x.state)).toEqual(['failed', 'failed']);
    expect(s.reloads[0].id).toBeGreaterThan(s.reloads[1].id);
    expect(s.reloads[1].rollback.state).toBe('succeeded');
    // smoothctl status shows them one line each, newest first.
    const st = await smoothctl(d.socket, ['status']);
    expect(st.stdout).toMatch(new RegExp(`recent reloads:\n  reload ${s.reloads[0].id} failed, [^\n]*: [^\n]+\n  reload ${s.reloads[1].id} failed, rolled back, \\d+\\.\\d s, `));
  }, 60_000);
});

describe('status.reloads', () => {
  it('keeps the last 10 reports, newest first, while the reload counter keeps counting', async () => {
    const dir = tempDir();
    const d = await startDaemon('groups:\n  web:\n    command: [sleep, "1000"]\n    ready: 100ms\n', { dir });
    fs.writeFileSync(d.configPath, 'groups: { web: { count: -1 } }\n');
    for (let i = 0; i < 12; i++) await expect(rpc(d.socket, 'reload', { wait: true })).rejects.toMatchObject({ code: -32004 });
    const s = await d.status();
    expect(s.reloads.map((r: { id: number }) => r.id)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    expect(s.reloads.every((r: { state: string }) => r.state === 'failed')).toBe(true);
    const m = await smoothctl(d.socket, ['metrics']);
    expect(value(m.stdout, 'smoothd_reloads_total{result="failed"}')).toBe(12);
  }, 60_000);
});

describe('exit reasons', () => {
  it('count a drain kill after stopTimeout as killed and a SIGKILLed worker as crashed and restarted', async () => {
    const dir = tempDir();
    const yaml = `groups:
  hold:
    command: [sh, -c, 'trap "" TERM; exec sleep 1000']
    ready: 200ms
    stopTimeout: 300ms
    restartDelay: 100ms
`;
    const d = await startDaemon(yaml, { dir });
    const metrics = async (): Promise<string> => (await smoothctl(d.socket, ['metrics'])).stdout;
    expect((await smoothctl(d.socket, ['reload'])).code).toBe(0);
    let text = await metrics();
    expect(value(text, 'smoothd_worker_exits_total{group="hold",reason="killed"}')).toBe(1);
    expect(value(text, 'smoothd_drain_kills_total{group="hold"}')).toBe(1);
    expect(value(text, 'smoothd_drain_seconds_count{group="hold"}')).toBe(1);
    expect(value(text, 'smoothd_drain_seconds_sum{group="hold"}')).toBeGreaterThanOrEqual(0.3);
    const [pid] = await d.workerPids('hold');
    process.kill(pid!, 'SIGKILL');
    text = await waitFor('the crashed worker to be restarted and ready', async () => {
      const t = await metrics();
      return value(t, 'smoothd_worker_restarts_total{group="hold"}') === 1 && value(t, 'smoothd_workers{group="hold",state="ready"}') === 1 ? t : null;
    });
    expect(value(text, 'smoothd_worker_exits_total{group="hold",reason="crashed"}')).toBe(1);
    expect(value(text, 'smoothd_worker_exits_total{group="hold",reason="stopped"}')).toBe(0);
    expect(value(text, 'smoothd_worker_ready_seconds_count{group="hold"}')).toBe(3);
  }, 30_000);
});

describe('the metrics listener', () => {
  it('serves only GET /metrics: 404 for other paths, 405 for other methods', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { metricsPort } = await webWithMetrics(dir);
    expect((await request(metricsPort, 'GET', '/')).status).toBe(404);
    expect((await request(metricsPort, 'GET', '/metrics/x')).status).toBe(404);
    expect((await request(metricsPort, 'POST', '/metrics')).status).toBe(405);
    expect((await request(metricsPort, 'PUT', '/metrics')).status).toBe(405);
    const ok = await request(metricsPort, 'GET', '/metrics?x=1');
    expect(ok.status).toBe(200);
    expect(value(ok.body, 'smoothd_last_reload_successful')).toBe(1);
    expect(value(ok.body, 'smoothd_reloads_total{result="succeeded"}')).toBe(0);
  }, 30_000);

  it('on a port in use fails the start with exit 71 and says which key and what to do', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const busy = await busyPort();
    try {
      const d = await startDaemon(`metrics: { listen: "127.0.0.1:${busy.port}" }\n` + config(group(dir, { count: 1 })), { dir, waitReady: false });
      const e = await d.exit;
      expect(e.code).toBe(71);
      expect(d.stderr.join('')).toMatch(new RegExp(`metrics.listen "127.0.0.1:${busy.port}": cannot listen \\(EADDRINUSE\\): the port is in use`));
      expect(d.stderr.join('')).not.toMatch(/\n\s+at /);
    } finally {
      busy.close();
    }
  }, 30_000);

  it('is not changed by a reload: a changed metrics.listen is refused with "needs a restart"', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const { d, metricsPort } = await webWithMetrics(dir);
    d.writeConfig(`metrics: { listen: "127.0.0.1:1" }\n` + config(group(dir, { count: 3, listen: ['127.0.0.1:0'] })));
    const r = await smoothctl(d.socket, ['reload']);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/metrics\.listen: changed from "127\.0\.0\.1:0" to "127\.0\.0\.1:1"; .*needs a restart of smoothd/);
    expect((await request(metricsPort, 'GET', '/metrics')).status).toBe(200);
  }, 30_000);
});

describe('scraping', () => {
  it('every 100 ms does not grow smoothd\'s heap', async () => {
    const dir = tempDir();
    release(dir, 'v1');
    const yaml = `metrics: { listen: "127.0.0.1:0" }\n` + config(group(dir, { count: 3, listen: ['127.0.0.1:0'] }));
    const d = await startDaemon(yaml, { dir, env: { NODE_OPTIONS: `--import ${GC_PROBE}`, GC_PROBE_OUT: path.join(dir, 'gc.json') } });
    const metricsPort = portOf((await d.status()).daemon.metrics.bound);
    const heapAfterGc = async (): Promise<number> => {
      const out = path.join(dir, 'gc.json');
      fs.rmSync(out, { force: true });
      process.kill(d.pid, 'SIGUSR2');
      const t = await waitFor('the gc probe', () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : null), 5000);
      return (JSON.parse(t) as { heapUsed: number }).heapUsed;
    };
    const scrape = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const t0 = Date.now();
        expect((await request(metricsPort, 'GET', '/metrics')).status).toBe(200);
        await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - t0))));
      }
    };
    // Two halves of 30 s: a minute of scrapes every 100 ms (10 a second).
    const seconds = Number(process.env.SMOOTHD_SCRAPE_SECONDS ?? 30);
    await scrape(50); // warm-up: JIT, first allocations
    const base = await heapAfterGc();
    await scrape(seconds * 10);
    const mid = await heapAfterGc();
    await scrape(seconds * 10);
    const end = await heapAfterGc();
    const mib = (b: number): string => (b / 1024 / 1024).toFixed(2);
    console.log(`heapUsed after a full GC while scraping every 100 ms: start ${mib(base)} MiB, after ${seconds} s ${mib(mid)} MiB, after ${2 * seconds} s ${mib(end)} MiB`);
    // A leak of 100 bytes per scrape would add 30 KB per 30 s; a kept document (~8 KB) per scrape 2.4 MB.
    expect(end - mid).toBeLessThan(256 * 1024);
  }, 150_000);
});
