/**
 * Hand-built snapshots for the rolling policy's unit tests: a group rolling to
 * generation 2 (specs of generations 0-2 present) and its worker records.
 */
import type { GroupState, WorkerRecord, WorkerPhase } from '../../src/supervisor/types.js';
import { groupConfig, specFor } from './harness.js';

export function policyGroup(count: number, surge: number, unavailable: number, name = 'web'): GroupState {
  const config = groupConfig({ name, count, rolling: { surge, unavailable } });
  return {
    name,
    config,
    generation: 2,
    lastGeneration: 2,
    specs: { '0': specFor(config), '1': specFor(config), '2': specFor(config) },
    slots: [],
    rollTarget: 2,
    pending: null,
    removing: false,
    history: [],
  };
}

export function policyWorker(id: number, slot: number, generation: number, phase: WorkerPhase, name = 'web'): WorkerRecord {
  return {
    id,
    group: name,
    slot,
    generation,
    pid: 1000 + id,
    phase,
    startedAt: 0,
    readyAt: phase === 'ready' ? 1 : null,
    stoppingAt: phase === 'stopping' ? 2 : null,
    statusText: null,
    stopReason: null,
    killed: false,
    retiredBy: null,
    startedBy: null,
    failed: false,
    leaderExit: null,
    counters: null,
    baseline: null,
  };
}
