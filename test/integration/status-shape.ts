/**
 * The status document's shape (DESIGN §6), field by field: every field the
 * contract lists must be present with its type. Returns the problems found
 * (empty = conforms), so a failing test names every bad field at once.
 */
type Kind = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null';
type Spec = readonly Kind[];

const DAEMON_STATES = ['starting', 'running', 'reloading', 'stopping'];
const RELOAD_STATES = ['idle', 'running', 'succeeded', 'failed', 'aborted'];
const GROUP_ROLL_STATES = ['rolled', 'skipped', 'failed', 'pending', 'rolling'];
const WORKER_STATES = ['starting', 'ready', 'stopping', 'backoff'];

function kindOf(v: unknown): Kind | 'other' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'object') return typeof v as Kind;
  return 'other';
}

function check(problems: string[], where: string, obj: unknown, fields: Record<string, Spec>): void {
  if (kindOf(obj) !== 'object') {
    problems.push(`${where}: expected an object, got ${JSON.stringify(obj)}`);
    return;
  }
  const o = obj as Record<string, unknown>;
  for (const [name, kinds] of Object.entries(fields)) {
    if (!(name in o)) {
      problems.push(`${where}.${name}: missing`);
      continue;
    }
    const k = kindOf(o[name]);
    const ok = kinds.includes(k as Kind) || (k === 'integer' && kinds.includes('number'));
    if (!ok) problems.push(`${where}.${name}: expected ${kinds.join(' | ')}, got ${JSON.stringify(o[name])}`);
  }
}

function oneOf(problems: string[], where: string, value: unknown, allowed: string[]): void {
  if (typeof value !== 'string' || !allowed.includes(value)) problems.push(`${where}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
}

function isoDate(problems: string[], where: string, value: unknown): void {
  if (value === null) return;
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) problems.push(`${where}: not an ISO date: ${JSON.stringify(value)}`);
}

export function statusShapeProblems(doc: unknown): string[] {
  const p: string[] = [];
  check(p, 'status', doc, { version: ['integer'], daemon: ['object'], reload: ['object'], groups: ['array'] });
  if (p.length > 0) return p;
  const d = doc as Record<string, any>;
  if (d.version !== 1) p.push(`status.version: expected 1, got ${d.version}`);
  check(p, 'daemon', d.daemon, {
    pid: ['integer'],
    version: ['string'],
    state: ['string'],
    startedAt: ['string'],
    uptimeMs: ['number'],
    platform: ['string'],
    configPath: ['string'],
  });
  oneOf(p, 'daemon.state', d.daemon.state, DAEMON_STATES);
  isoDate(p, 'daemon.startedAt', d.daemon.startedAt);
  check(p, 'reload', d.reload, {
    id: ['integer'],
    state: ['string'],
    startedAt: ['string', 'null'],
    finishedAt: ['string', 'null'],
    done: ['integer'],
    total: ['integer'],
    error: ['string', 'null'],
    queued: ['integer', 'null'],
    groups: ['array'],
  });
  oneOf(p, 'reload.state', d.reload.state, RELOAD_STATES);
  isoDate(p, 'reload.startedAt', d.reload.startedAt);
  isoDate(p, 'reload.finishedAt', d.reload.finishedAt);
  (Array.isArray(d.reload.groups) ? d.reload.groups : []).forEach((g: unknown, i: number) => {
    check(p, `reload.groups[${i}]`, g, { name: ['string'], state: ['string'], done: ['integer'], total: ['integer'] });
    oneOf(p, `reload.groups[${i}].state`, (g as any)?.state, GROUP_ROLL_STATES);
  });
  d.groups.forEach((g: any, i: number) => {
    const at = `groups[${i}]`;
    check(p, at, g, {
      name: ['string'],
      reloadable: ['boolean'],
      generation: ['integer'],
      desired: ['integer'],
      pending: ['boolean'],
      listen: ['array'],
      workers: ['array'],
    });
    (Array.isArray(g?.listen) ? g.listen : []).forEach((l: unknown, j: number) =>
      check(p, `${at}.listen[${j}]`, l, { name: ['string'], address: ['string'], bound: ['string', 'null'] }),
    );
    (Array.isArray(g?.workers) ? g.workers : []).forEach((w: any, j: number) => {
      const wat = `${at}.workers[${j}]`;
      check(p, wat, w, {
        id: ['integer', 'null'],
        slot: ['integer'],
        pid: ['integer', 'null'],
        generation: ['integer'],
        state: ['string'],
        startedAt: ['string', 'null'],
        readyAt: ['string', 'null'],
        restarts: ['integer'],
        rssBytes: ['integer', 'null'],
        statusText: ['string', 'null'],
        lastExit: ['object', 'null'],
      });
      oneOf(p, `${wat}.state`, w?.state, WORKER_STATES);
      isoDate(p, `${wat}.startedAt`, w?.startedAt);
      isoDate(p, `${wat}.readyAt`, w?.readyAt);
    });
  });
  return p;
}
