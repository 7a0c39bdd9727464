// The benchmark's pure parts (bench/stats.js, bench/chart.js): statistics,
// smoothd's overhead from a log, and the chart. No timings are asserted here.
import { describe, expect, it } from 'vitest';
import { esc, niceCeil, renderChart } from '../../bench/chart.js';
import { buckets, cpuTicks, KIND, percentile, procKb, reloadOverhead, sortedCopy, spread, windowStats, type Records } from '../../bench/stats.js';

function records(rows: Array<[t: number, lat: number, kind: number]>): Records {
  return {
    n: rows.length,
    t: Float64Array.from(rows.map((r) => r[0])),
    lat: Float32Array.from(rows.map((r) => r[1])),
    kind: Uint8Array.from(rows.map((r) => r[2])),
  };
}

describe('percentile (nearest rank)', () => {
  it('picks the smallest value with at least p% at or below it', () => {
    const s = sortedCopy(Array.from({ length: 100 }, (_, i) => 100 - i)); // 100..1, sorted to 1..100
    expect(percentile(s, 50)).toBe(50);
    expect(percentile(s, 99)).toBe(99);
    expect(percentile(s, 100)).toBe(100);
    expect(percentile(s, 0)).toBe(1);
    const ten = sortedCopy([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(percentile(ten, 90)).toBe(9);
    expect(percentile(ten, 99)).toBe(10);
    expect(percentile(ten, 50)).toBe(5);
    expect(percentile(sortedCopy([7]), 99)).toBe(7);
    expect(percentile(sortedCopy([]), 50)).toBeNaN();
  });

  it('sorts numerically, not as strings', () => {
    expect(Array.from(sortedCopy([10, 9, 100, 1.5]))).toEqual([1.5, 9, 10, 100]);
    expect(spread([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3, mean: 2, n: 3 });
  });
});

describe('windowStats and buckets', () => {
  const recs = records([
    [1000, 5, KIND.OK],
    [1100, 7, KIND.OK],
    [1200, 0, KIND.ERROR],
    [1600, 9, KIND.OK],
    [1700, 0, KIND.DROPPED],
    [1900, 50, KIND.NON_2XX],
    [2100, 1, KIND.OK], // outside [1000, 2000)
  ]);

  it('counts requests by how they ended and takes latencies of 2xx only', () => {
    const w = windowStats(recs, 1000, 2000);
    expect(w.requests).toBe(6);
    expect(w.ok).toBe(3);
    expect(w.failed).toBe(3);
    expect(w.failures).toEqual({ non2xx: 1, errors: 1, timeouts: 0, dropped: 1, hung: 0, unsent: 0 });
    expect(w.rps).toBe(3);
    expect(w.p50).toBe(7);
    expect(w.p99).toBe(9);
    expect(w.max).toBe(9);
  });

  it('keeps only the requests inside the given windows and rates them over the windows', () => {
    const w = windowStats(recs, 1000, 2000, [{ from: 1050, to: 1250 }, { from: 1550, to: 1650 }]);
    expect(w.requests).toBe(3); // 1100 ok, 1200 error, 1600 ok
    expect(w.ok).toBe(2);
    expect(w.seconds).toBeCloseTo(0.3);
    expect(w.rps).toBeCloseTo(2 / 0.3);
  });

  it('cuts time into buckets with rate, p99 and failures each', () => {
    const b = buckets(recs, 1000, 2000, 500);
    expect(b).toHaveLength(2);
    expect(b[0]).toMatchObject({ t: 0, rps: 4, p99: 7, failed: 1 });
    expect(b[1]).toMatchObject({ t: 500, rps: 2, p99: 9, failed: 2 });
    const empty = buckets(records([]), 0, 1000, 250);
    expect(empty).toHaveLength(4);
    expect(empty[0]!.p99).toBeNaN();
  });
});

describe('reloadOverhead', () => {
  const iso = (ms: number) => new Date(ms).toISOString();
  // A roll of two workers (surge 1): new 5 replaces old 1, new 6 replaces old 2.
  const log = [
    { time: iso(1000), msg: 'smoothd is reloading' },
    { time: iso(1025), msg: 'worker started', workerId: 5 }, // decided at 1020, spawn() returned at 1025
    { time: iso(1220), msg: 'worker ready', workerId: 5, startupMs: 200 },
    { time: iso(1221), msg: 'stopping worker', workerId: 1 },
    { time: iso(1224), msg: 'worker started', workerId: 6 }, // decided at 1222
    { time: iso(1250), msg: 'worker exited', workerId: 1 },
    { time: iso(1522), msg: 'worker ready', workerId: 6, startupMs: 300 },
    { time: iso(1523), msg: 'stopping worker', workerId: 2 },
    { time: iso(1560), msg: 'worker exited', workerId: 2 },
  ];

  it('splits the duration into waits on workers and smoothd gaps along the critical path', () => {
    const o = reloadOverhead(log, 1000, 1561)!;
    expect(o).not.toBeNull();
    // waits: drain of 2 (37) + start of 6 (300) + start of 5 (200)
    expect(o.workerMs).toBe(537);
    // gaps: exit 2 -> end (1), ready 6 -> signal 2 (1), ready 5 -> spawn 6 (2), request -> spawn 5 (20)
    expect(o.overheadMs).toBe(24);
    expect(o.overheadMs + o.workerMs).toBe(o.durationMs);
    expect(o.replaced).toBe(2);
    expect(o.overheadPerWorkerMs).toBe(12);
    expect(o.configMs).toBe(20);
    expect(o.spawnMs).toEqual([5, 2]);
    expect(o.overheadInclSpawnMs).toBe(31);
    expect(o.path.map((p) => ('smoothdMs' in p ? `s${p.smoothdMs}` : `w${p.workerMs}`))).toEqual(['s20', 'w200', 's2', 'w300', 's1', 'w37', 's1']);
  });

  it('takes the lines between the reload\'s own start and end lines when given its id', () => {
    // The last exit is written 3 ms after finishedAt (the daemon was preempted
    // between taking the time and writing the line): by time it would be cut.
    const lines = [
      { time: iso(990), msg: 'worker exited', workerId: 99 }, // before this reload
      { time: iso(1000), msg: 'reload started: reading the config', reloadId: 7 },
      ...log.slice(1, -1),
      { time: iso(1564), msg: 'worker exited', workerId: 2 },
      { time: iso(1564), msg: 'reload succeeded', reloadId: 7 },
    ];
    const byTime = reloadOverhead(lines, 1000, 1561)!;
    expect(byTime.path.at(-1)).toMatchObject({ from: 'worker 6 ready', to: 'reload finished' });
    const byId = reloadOverhead(lines, 1000, 1561, 7)!;
    expect(byId.path.at(-1)).toMatchObject({ smoothdMs: 0, from: 'worker 2 exited', to: 'reload finished' });
    expect(byId.overheadMs).toBe(23);
    expect(byId.workerMs).toBe(541);
  });

  it('ignores a wait that began before the reload', () => {
    expect(reloadOverhead([{ time: iso(1010), msg: 'worker exited', workerId: 9 }], 1000, 1020)).toBeNull();
  });
});

describe('/proc parsing', () => {
  it('reads utime+stime even when the command name has spaces and parentheses', () => {
    const fields = ['S', '1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '150', '25', '0', '0'];
    expect(cpuTicks(`1234 (node (x) y) ${fields.join(' ')}`)).toBe(175);
  });
  it('reads kB lines', () => {
    expect(procKb('VmRSS:\t   51200 kB\nVmHWM:\t 60000 kB\nThreads: 7\n', ['VmRSS', 'Threads'])).toEqual({ VmRSS: 51200 });
  });
});

describe('renderChart', () => {
  const run = (failed: number[]) => ({
    label: 'keep-alive <on> & "off"',
    buckets: failed.map((f, i) => ({ t: i * 250, rps: 1000 + i, p99: i === 2 ? NaN : 10 + i, failed: f })),
    windows: [
      { from: 250, to: 600 },
      { from: 1000, to: 1400 },
      { from: 5000, to: 6000 }, // past the end: not drawn
    ],
    phases: [{ from: 0, to: 500, label: 'steady' }],
  });

  function balanced(svg: string): boolean {
    const stack: string[] = [];
    for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
      if (m[3] === '/') continue;
      if (m[1] === '/') {
        if (stack.pop() !== m[2]) return false;
      } else stack.push(m[2]!);
    }
    return stack.length === 0;
  }

  it('draws a well-formed SVG with each reload window shaded in all three panels', () => {
    const svg = renderChart({ title: 'deploy', bucketMs: 250, runs: [run([0, 0, 0, 0, 0, 0, 0, 0]), run([0, 3, 0, 0, 1, 0, 0, 0])] });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(balanced(svg)).toBe(true);
    // 2 runs x 3 panels x 2 windows inside the time range
    expect(svg.match(/class="reload"/g)).toHaveLength(12);
    // failed bars only where requests failed; "0 failed" printed for the clean run
    expect(svg.match(/class="failed"/g)).toHaveLength(2);
    expect(svg.match(/0 failed requests/g)).toHaveLength(1);
    // labels are escaped; a NaN p99 breaks the line instead of printing NaN
    expect(svg).toContain('keep-alive &lt;on&gt; &amp; &quot;off&quot;');
    expect(svg).not.toContain('NaN');
    expect(svg).toContain('>steady<');
  });

  it('picks readable axis maxima', () => {
    expect(niceCeil(0)).toBe(1);
    expect(niceCeil(7)).toBe(10);
    expect(niceCeil(13_052)).toBe(20_000);
    expect(niceCeil(201)).toBe(250);
    expect(niceCeil(0.3)).toBeCloseTo(0.5);
    expect(esc('<a&b>')).toBe('&lt;a&amp;b&gt;');
  });
});
