/**
 * The event stream (DESIGN §11, RPC `subscribe`): every change smoothd makes,
 * derived from what the runtime handled (the event, the state before and
 * after, the effects). Nothing is derived while nobody subscribes. Delivery is
 * the subscriber's own: the control server drops a connection that does not
 * read, so a slow subscriber never slows smoothd.
 */
import { exitReason, reloadResult } from '../metrics/collector.js';
import type { Effect, MachineEvent, MachineState, WorkerRecord } from '../supervisor/types.js';

export const EVENT_NAMES = [
  'worker.started',
  'worker.ready',
  'worker.stopping',
  'worker.stopped',
  'worker.failed',
  'worker.crashed',
  'worker.killed',
  'bake.started',
  'bake.passed',
  'verify.failed',
  'watch.started',
  'watch.passed',
  'rollback.started',
  'rollback.done',
  'reload.started',
  'reload.done',
  'config.refused',
  'daemon.stopping',
] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/** params of an `event` notification. */
export interface SmoothdEvent {
  event: EventName;
  /** ISO 8601. */
  at: string;
  group: string | null;
  workerId: number | null;
  pid: number | null;
  generation: number | null;
  message: string;
  data: Record<string, unknown> | null;
}

/** Progress steps passed on as events under the same name. */
const PROGRESS_EVENTS = new Set<string>(['bake.started', 'bake.passed', 'verify.failed', 'watch.started', 'watch.passed', 'rollback.started', 'rollback.done']);

type Send = (e: SmoothdEvent) => void;

export class EventHub {
  private readonly subscribers = new Set<{ names: Set<string> | null; send: Send }>();

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Starts sending events (only `names`, or all); returns the function that stops it. */
  subscribe(names: readonly string[] | null, send: Send): () => void {
    const sub = { names: names === null ? null : new Set(names), send };
    this.subscribers.add(sub);
    return () => this.subscribers.delete(sub);
  }

  observe(prev: MachineState, event: MachineEvent, next: MachineState, effects: readonly Effect[], now: number): void {
    if (this.subscribers.size === 0) return;
    const at = new Date(now).toISOString();
    const out: SmoothdEvent[] = [];
    const emit = (name: EventName, w: Pick<WorkerRecord, 'group' | 'id' | 'pid' | 'generation'> | null, message: string, data: Record<string, unknown> | null = null, group?: string | null): void => {
      out.push({ event: name, at, group: w?.group ?? group ?? null, workerId: w?.id ?? null, pid: w?.pid ?? null, generation: w?.generation ?? null, message, data });
    };
    const before = (id: number): WorkerRecord | undefined => prev.workers.find((x) => x.id === id);
    const after = (id: number): WorkerRecord | undefined => next.workers.find((x) => x.id === id);

    if (next.reload && next.reload.id !== prev.reload?.id) {
      emit('reload.started', null, `${next.reload.trigger === 'restart' ? 'restart' : 'reload'} ${next.reload.id} started (${next.reload.trigger})`, { id: next.reload.id, trigger: next.reload.trigger, groups: next.reload.groups });
    }
    switch (event.type) {
      case 'worker.spawned': {
        const w = after(event.workerId);
        if (w) emit('worker.started', w, `worker ${w.id} (pid ${w.pid}) started, slot ${w.slot}, generation ${w.generation}`, { slot: w.slot });
        break;
      }
      case 'worker.ready':
      case 'timer': {
        const id = event.type === 'worker.ready' ? event.workerId : event.key.startsWith('ready:') ? Number(event.key.slice(6)) : null;
        if (id === null) break;
        const w = after(id);
        if (w && w.readyAt !== null && before(id)?.readyAt === null) emit('worker.ready', w, `worker ${w.id} (pid ${w.pid}) ready in ${w.readyAt - w.startedAt} ms`, { startupMs: w.readyAt - w.startedAt });
        break;
      }
      case 'worker.spawnFailed': {
        const w = before(event.workerId);
        if (w) emit('worker.failed', w, `worker ${w.id} could not be spawned: ${event.error}`, { reason: 'spawn_failed' });
        break;
      }
      case 'worker.exited': {
        const w = before(event.workerId);
        if (!w || w.leaderExit !== null) break;
        const how = event.signal ? `signal ${event.signal}` : `code ${event.code}`;
        const reason = exitReason(w);
        const data = { code: event.code, signal: event.signal, reason };
        if (reason === 'crashed') emit('worker.crashed', w, `worker ${w.id} (pid ${w.pid}) crashed (${how})`, data);
        else if (reason === 'failed_ready') emit('worker.failed', w, `worker ${w.id} (pid ${w.pid}) exited before ready (${how})`, data);
        else emit('worker.stopped', w, `worker ${w.id} (pid ${w.pid}) stopped (${how})${reason === 'killed' ? ' after SIGKILL' : ''}`, data);
        break;
      }
      case 'config.failed':
        emit('config.refused', null, `config refused: ${event.message}`, { reloadId: event.reloadId, issues: event.issues });
        break;
      default:
        break;
    }
    for (const e of effects) {
      switch (e.type) {
        case 'signal': {
          const w = after(e.workerId) ?? before(e.workerId);
          if (!w) break;
          if (e.signal === 'SIGKILL') emit('worker.killed', w, `worker ${w.id} (pid ${w.pid}) killed (SIGKILL)`, { signal: 'SIGKILL' });
          else if (w.phase === 'stopping' && before(e.workerId)?.phase !== 'stopping') emit('worker.stopping', w, `worker ${w.id} (pid ${w.pid}) stopping (${e.signal}): ${w.stopReason ?? 'stop'}`, { signal: e.signal, reason: w.stopReason });
          break;
        }
        case 'reload.progress':
          if (PROGRESS_EVENTS.has(e.event.step)) {
            out.push({ event: e.event.step as EventName, at, group: e.event.group, workerId: e.event.workerId, pid: e.event.pid, generation: e.event.generation, message: e.event.message, data: { reloadId: e.reloadId } });
          }
          break;
        case 'reload.finished': {
          const r = e.report;
          emit('reload.done', null, `reload ${r.id} ${r.state}${r.error ? `: ${r.error}` : ''}`, { id: r.id, result: reloadResult(r), state: r.state, durationMs: r.durationMs, error: r.error, rollback: r.rollback });
          break;
        }
        case 'daemon.state':
          if (e.state === 'stopping' && prev.daemon !== 'stopping') emit('daemon.stopping', null, 'smoothd is stopping');
          break;
        default:
          break;
      }
    }
    for (const ev of out) {
      for (const sub of this.subscribers) {
        if (sub.names === null || sub.names.has(ev.event)) sub.send(ev);
      }
    }
  }
}
