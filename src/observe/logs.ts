/**
 * The workers' last output lines per group (DESIGN §11, `smoothctl logs`): a
 * ring bounded by lines and by bytes (`logs: {lines, bytes}`, per group), and
 * followers that get each new line. Followers are control connections; the
 * control server drops one that does not read, so a stalled follower costs
 * bounded memory and never slows smoothd.
 */
import type { LogLimits } from '../config/types.js';

export interface LogLine {
  /** Increasing over all groups: merges groups in the order lines arrived. */
  seq: number;
  at: number;
  group: string;
  workerId: number;
  pid: number;
  generation: number;
  stream: 'stdout' | 'stderr';
  text: string;
}

/** What `logs` hands out: a line that is a JSON object (pino, bunyan) stays JSON. */
export interface LogRecord {
  at: string;
  group: string;
  workerId: number;
  pid: number;
  generation: number;
  stream: 'stdout' | 'stderr';
  line: string | Record<string, unknown>;
}

export function toRecord(l: LogLine): LogRecord {
  let line: string | Record<string, unknown> = l.text;
  if (l.text.startsWith('{') && l.text.endsWith('}')) {
    try {
      const v: unknown = JSON.parse(l.text);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) line = v as Record<string, unknown>;
    } catch {
      // not JSON after all: keep the text
    }
  }
  return { at: new Date(l.at).toISOString(), group: l.group, workerId: l.workerId, pid: l.pid, generation: l.generation, stream: l.stream, line };
}

/**
 * A line is built as one literal of fixed shape: V8 (Node 20) gives every
 * object made by `{ ...l, seq }` a hidden class of its own, ~350 bytes more
 * per kept line (a heap snapshot after 400 reloads: one map, descriptor array
 * and property array per line in the ring).
 */
function makeLine(l: Omit<LogLine, 'seq'>, seq: number): LogLine {
  return { seq, at: l.at, group: l.group, workerId: l.workerId, pid: l.pid, generation: l.generation, stream: l.stream, text: l.text };
}

/** Lines dropped from the front of a ring before its array is compacted. */
export const RING_SLACK = 64;

class Ring {
  readonly lines: LogLine[] = [];
  private head = 0;
  bytes = 0;

  push(l: LogLine, limits: LogLimits): void {
    this.lines.push(l);
    this.bytes += Buffer.byteLength(l.text);
    while (this.lines.length - this.head > limits.lines || (this.bytes > limits.bytes && this.lines.length - this.head > 1)) {
      this.bytes -= Buffer.byteLength(this.lines[this.head]!.text);
      this.head += 1;
    }
    // Compact once a few lines were dropped, so the array keeps at most
    // RING_SLACK lines beyond its limit (it kept up to 1 024 more, 2x the default).
    if (this.head >= RING_SLACK) {
      this.lines.splice(0, this.head);
      this.head = 0;
    }
  }

  last(n: number): LogLine[] {
    return this.lines.slice(Math.max(this.head, this.lines.length - n));
  }

  /** Line objects the ring still references, dropped ones included (tests). */
  retained(): number {
    return this.lines.length;
  }
}

type Follower = { group: string | null; send(l: LogLine): void };

export class LogStore {
  private readonly rings = new Map<string, Ring>();
  private readonly followers = new Set<Follower>();
  private seq = 0;

  constructor(private readonly defaults: LogLimits) {}

  add(l: Omit<LogLine, 'seq'>, limits: LogLimits | undefined): void {
    const line = makeLine(l, this.seq++);
    let ring = this.rings.get(l.group);
    if (!ring) this.rings.set(l.group, (ring = new Ring()));
    ring.push(line, limits ?? this.defaults);
    for (const f of this.followers) if (f.group === null || f.group === l.group) f.send(line);
  }

  /** The last `n` lines of one group, or of all groups merged in arrival order. */
  tail(group: string | null, n: number): LogLine[] {
    if (group !== null) return this.rings.get(group)?.last(n) ?? [];
    const all = [...this.rings.values()].flatMap((r) => r.last(n));
    return all.sort((a, b) => a.seq - b.seq).slice(-n);
  }

  follow(group: string | null, send: (l: LogLine) => void): () => void {
    const f: Follower = { group, send };
    this.followers.add(f);
    return () => this.followers.delete(f);
  }

  hasGroup(group: string): boolean {
    return this.rings.has(group);
  }

  /** Line objects kept over all rings, including dropped ones awaiting compaction (tests). */
  retainedLines(): number {
    let n = 0;
    for (const r of this.rings.values()) n += r.retained();
    return n;
  }
}
