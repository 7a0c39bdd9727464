// alignedProfile (bench/stats.js): the open loop's latency around reload
// events, binned by each request's scheduled time relative to every anchor.
import { describe, expect, it } from 'vitest';
import { alignedProfile, KIND, type Records } from '../../bench/stats.js';

function records(rows: Array<[end: number, lat: number, kind: number]>): Records {
  return {
    n: rows.length,
    t: Float64Array.from(rows.map((r) => r[0])),
    lat: Float32Array.from(rows.map((r) => r[1])),
    kind: Uint8Array.from(rows.map((r) => r[2])),
  };
}

describe('alignedProfile', () => {
  it('bins 2xx requests by scheduled time (end - latency) relative to each anchor, over all anchors', () => {
    const recs = records([
      [1010, 20, KIND.OK], // scheduled 990: -10 from anchor 1000
      [1060, 10, KIND.OK], // scheduled 1050: +50 from 1000
      [1080, 30, KIND.OK], // scheduled 1050 as well
      [1070, 5, KIND.ERROR], // not 2xx: left out
      [5030, 40, KIND.OK], // scheduled 4990: -10 from anchor 5000
      [5125, 100, KIND.OK], // scheduled 5025: +25 from 5000, though it ended at +125
      [9000, 1, KIND.OK], // far from both anchors
    ]);
    const bins = alignedProfile(recs, [5000, 1000], -50, 100, 50);
    expect(bins.map((b) => b.offsetMs)).toEqual([-50, 0, 50]);
    expect(bins[0]).toMatchObject({ requests: 2, p50: 20, p99: 40 });
    expect(bins[1]).toMatchObject({ requests: 1, p50: 100, p99: 100 });
    expect(bins[2]).toMatchObject({ requests: 2, p50: 10, p99: 30 });
  });

  it('counts a request once per anchor it is near, and gives NaN for an empty bin', () => {
    const recs = records([[1000, 0, KIND.OK]]);
    const bins = alignedProfile(recs, [990, 960], 0, 60, 20);
    expect(bins.map((b) => b.requests)).toEqual([1, 0, 1]); // +10 from 990, +40 from 960
    expect(bins[1]!.p99).toBeNaN();
    expect(alignedProfile(recs, [], 0, 60, 20).every((b) => b.requests === 0)).toBe(true);
  });
});
