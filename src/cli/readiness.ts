/**
 * `smoothctl status --ready`: the readiness verdict over a status document
 * (DESIGN §12), for Kubernetes readiness probes and load balancer checks.
 *
 * Ready when all of these hold:
 * - smoothd is `running` or `reloading` (not `starting`, not `stopping`);
 * - every group has at least `desired` (its `count`) workers in state `ready`
 *   (old or new generation: during a roll both serve);
 * - no reload is failing: no group of a reload running now has failed, and
 *   the latest reload did not fail without being rolled back. A failed reload
 *   whose rollback succeeded serves the previous release on every slot: ready.
 *   One that left new workers serving (`onFailure: keep`, a skipped or failed
 *   rollback) keeps the probe failed until a later reload succeeds, so a
 *   broken release cannot go unnoticed on one host.
 *
 * Pure: data in, verdict out. No imports beyond types (smoothctl's cheap path).
 */
import type { StatusDocument } from '../supervisor/report.js';

export type Readiness = { ready: true; summary: string } | { ready: false; reason: string };

export function readiness(doc: StatusDocument): Readiness {
  const state = doc.daemon.state;
  if (state !== 'running' && state !== 'reloading') return { ready: false, reason: `smoothd is ${state}` };
  const r = doc.reload;
  if (r.state === 'failed' && r.rollback?.state !== 'succeeded') {
    const why = r.rollback ? `; its rollback ${r.rollback.state}` : '';
    return { ready: false, reason: `reload ${r.id} failed${r.error ? `: ${r.error}` : ''}${why} (ready again once a reload succeeds)` };
  }
  if (r.state === 'running') {
    const failed = r.groups.filter((g) => g.state === 'failed').map((g) => g.name);
    if (failed.length > 0) return { ready: false, reason: `reload ${r.id} is failing in group ${failed.join(', ')}` };
  }
  let workers = 0;
  for (const g of doc.groups) {
    const ready = g.workers.filter((w) => w.state === 'ready').length;
    if (ready < g.desired) {
      const others = g.workers.filter((w) => w.state !== 'ready');
      const states = [...new Set(others.map((w) => w.state))].map((s) => `${others.filter((w) => w.state === s).length} ${s}`);
      return { ready: false, reason: `group ${g.name} has ${ready} of ${g.desired} workers ready${states.length > 0 ? ` (${states.join(', ')})` : ''}` };
    }
    workers += ready;
  }
  return { ready: true, summary: `ready: ${doc.groups.length} group${doc.groups.length === 1 ? '' : 's'}, ${workers} worker${workers === 1 ? '' : 's'} ready` };
}
