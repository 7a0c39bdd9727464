// The cost of the smoothd/worker kit's request counters (deploy verification, DESIGN §10):
// countResponse(status) is what the kit runs for every finished HTTP response.
// Run: npm run build && node bench/count-cost.mjs
import { countResponse, stats } from '../dist/worker/stats.js';

const N = 20_000_000;
for (let run = 1; run <= 3; run++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) countResponse(i % 50 === 0 ? 500 : 200);
  const ns = Number(process.hrtime.bigint() - t0) / N;
  console.log(`countResponse: ${ns.toFixed(1)} ns per response (run ${run}; ${stats().requests} counted)`);
}
