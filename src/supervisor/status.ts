/**
 * Builds the status document (DESIGN §6) from a state snapshot. Pure: the
 * runtime passes in what only it knows (pids' memory, bound addresses).
 */
import { currentReport } from './machine.js';
import { historyStatus } from './history.js';
import { groupWorkers } from './policy.js';
import type { StatusDocument, WorkerStatus } from './report.js';
import type { MachineState } from './types.js';

export interface StatusInputs {
  pid: number;
  version: string;
  now: number;
  /** Resident memory of a worker process, or null when unknown. */
  rss(pid: number): number | null;
  /** Real bound address for a listen key (`tcp:127.0.0.1:0` -> `127.0.0.1:41234`). */
  bound(key: string): string | null;
  /** ISO 8601 text of a time (the runtime caches them); default `Date#toISOString`. */
  iso?(t: number): string;
}

export function buildStatus(s: MachineState, io: StatusInputs): StatusDocument {
  const format = io.iso ?? ((t: number): string => new Date(t).toISOString());
  const iso = (t: number | null): string | null => (t === null ? null : format(t));
  return {
    version: 1,
    daemon: {
      pid: io.pid,
      version: io.version,
      state: s.daemon,
      startedAt: format(s.startedAt),
      uptimeMs: io.now - s.startedAt,
      platform: s.platform,
      configPath: s.configPath,
    },
    reload: currentReport(s, io.now),
    groups: s.groups.map((g) => {
      const workers: WorkerStatus[] = groupWorkers(s.workers, g.name)
        .sort((a, b) => a.slot - b.slot || a.id - b.id)
        .map((w) => ({
          id: w.id,
          slot: w.slot,
          pid: w.pid,
          generation: w.generation,
          state: w.phase,
          startedAt: iso(w.startedAt),
          readyAt: iso(w.readyAt),
          restarts: g.slots[w.slot]?.restarts ?? 0,
          rssBytes: w.pid === null ? null : io.rss(w.pid),
          statusText: w.statusText,
          lastExit: g.slots[w.slot]?.lastExit ?? null,
        }));
      g.slots.forEach((slot, i) => {
        if (slot.backoffUntil === null) return;
        workers.push({
          id: null,
          slot: i,
          pid: null,
          generation: slot.generation,
          state: 'backoff',
          startedAt: null,
          readyAt: null,
          restarts: slot.restarts,
          rssBytes: null,
          statusText: `restarting in ${Math.max(0, slot.backoffUntil - io.now)} ms`,
          lastExit: slot.lastExit,
        });
      });
      const spec = g.specs[String(g.generation)];
      return {
        name: g.name,
        reloadable: g.config.reloadable,
        generation: g.generation,
        desired: g.config.count,
        pending: g.pending !== null,
        listen: (spec ?? g.config).listen.map((l) => ({ name: l.name, address: l.text, bound: io.bound(l.address.key) })),
        workers,
        revision: spec?.revision ?? null,
        history: historyStatus(g.history, g.generation),
      };
    }),
  };
}
