/**
 * Wiring of the daemon: config -> resolved generation specs -> held sockets ->
 * runtime -> control socket, plus the control handlers that turn JSON-RPC
 * calls into runtime requests.
 */
import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import { addressesOverlap } from './config/listen.js';
import { loadCheckedConfig, resolveCommand } from './config/load.js';
import { ConfigError, type Config, type ConfigIssue } from './config/types.js';
import { ERROR_CODES, RpcError, rpcErrors } from './control/errors.js';
import { previewReload, type ReloadPreview } from './supervisor/preview.js';
import type { ReloadReport } from './supervisor/report.js';
import type { GenerationSpec, ProgressEvent } from './supervisor/types.js';
import { notifyUnavailable } from './runtime/notify-socket.js';
import { ListenError, type SocketTable } from './runtime/sockets.js';
import { RequestRefused, type Runtime } from './runtime/runtime.js';
import { EVENT_NAMES, type EventHub } from './observe/events.js';
import { toRecord, type LogStore } from './observe/logs.js';
import { EVENT_NOTIFICATION } from './control/methods.js';

/**
 * Resolves each group's spec for a new generation: `cwd` through realpath (a
 * symlinked release folder is pinned to the release it points at now) and
 * command[0] through the PATH lookup.
 */
export async function resolveSpecs(config: Config): Promise<Record<string, GenerationSpec>> {
  const issues: ConfigIssue[] = [];
  const specs: Record<string, GenerationSpec> = {};
  for (const g of config.groups) {
    let cwdReal: string;
    try {
      cwdReal = await fs.realpath(g.cwd);
    } catch (err) {
      issues.push({ path: `groups.${g.name}.cwd`, message: `${g.cwd} cannot be resolved (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); create it or fix cwd` });
      continue;
    }
    const executable = await resolveCommand(g.command[0]!, cwdReal, g.env.PATH ?? process.env.PATH);
    if (executable === null) {
      issues.push({ path: `groups.${g.name}.command[0]`, message: `${JSON.stringify(g.command[0])} was not found or is not executable; install it or fix the command` });
      continue;
    }
    specs[g.name] = { ...g, cwdReal, executable, revision: await readRevision(cwdReal) };
  }
  if (issues.length > 0) throw new ConfigError(config.path, issues);
  return specs;
}

/**
 * The release's identity: the first line of a REVISION file in its folder
 * (Capistrano and many deploy scripts write the commit there), else null.
 */
export async function readRevision(cwdReal: string): Promise<string | null> {
  let text: string;
  try {
    const fh = await fs.open(`${cwdReal}/REVISION`, 'r');
    try {
      const buf = Buffer.alloc(512);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      text = buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
  const line = (text.split('\n')[0] ?? '').replace(/[\x00-\x1f\x7f]/g, '').trim();
  return line === '' ? null : line.slice(0, 200);
}

/** Binds the config's listen addresses not held yet, refusing overlaps with held ones. */
export async function bindListen(config: Config, sockets: SocketTable): Promise<void> {
  const issues: ConfigIssue[] = [];
  for (const g of config.groups) {
    g.listen.forEach((entry, i) => {
      if (sockets.get(entry.address.key)) return;
      for (const key of sockets.keys()) {
        const held = sockets.get(key)!;
        if (addressesOverlap(entry.address, held.address)) {
          issues.push({
            path: `groups.${g.name}.listen[${i}]`,
            message: `${JSON.stringify(entry.text)} overlaps ${held.bound}, which smoothd already holds; this change needs a restart of smoothd`,
          });
        }
      }
    });
  }
  if (issues.length > 0) throw new ConfigError(config.path, issues);
  try {
    await sockets.bindAll(config.groups.flatMap((g) => g.listen));
  } catch (err) {
    if (err instanceof ListenError) throw new ConfigError(config.path, [{ path: 'listen', message: err.message }]);
    throw err;
  }
}

/**
 * The config as smoothd can run it on this machine: validated, checked
 * (commands, folders, accounts, setpriv for `user`/`group`) and with every
 * readiness mode available. The one loader for start, --check and every
 * reload; `setpriv` is the one the workers are spawned through.
 */
export async function loadDaemonConfig(file: string, setpriv: string | null): Promise<Config> {
  const config = await loadCheckedConfig(file, { setpriv });
  // `ready: notify` needs the optional datagram package: say how to get it now, not at the first spawn.
  const missing = notifyUnavailable(config);
  if (missing.length > 0) throw new ConfigError(config.path, missing);
  return config;
}

/** A change of `metrics` (the HTTP listener smoothd opened at start) cannot be applied by a reload. */
export function metricsChange(started: Config, next: Config): ConfigIssue | null {
  const before = started.metrics?.listen ?? null;
  const after = next.metrics?.listen ?? null;
  if (before === after) return null;
  const show = (v: string | null): string => (v === null ? 'off' : JSON.stringify(v));
  return {
    path: 'metrics.listen',
    message: `changed from ${show(before)} to ${show(after)}; the metrics listener is opened at start, so this change needs a restart of smoothd (or put the old value back)`,
  };
}

/** What a reload runs to re-read the config: validate, check, bind new addresses, resolve specs. */
export function reloadLoader(configPath: string, setpriv: string | null, started?: Config) {
  return async (sockets: SocketTable): Promise<{ config: Config; specs: Record<string, GenerationSpec> }> => {
    const config = await loadDaemonConfig(configPath, setpriv);
    const change = started ? metricsChange(started, config) : null;
    if (change) throw new ConfigError(config.path, [change]);
    const specs = await resolveSpecs(config);
    await bindListen(config, sockets);
    return { config, specs };
  };
}

// ------------------------------------------------------------------ control

export interface CallContext {
  notify(method: string, params: unknown): void;
  signal: AbortSignal;
}

function progressParams(e: ProgressEvent & { reloadId: number }): Record<string, unknown> {
  return {
    id: e.reloadId,
    event: e.step,
    group: e.group,
    message: e.message,
    done: e.done,
    total: e.total,
    workerId: e.workerId,
    pid: e.pid,
    slot: e.slot,
    generation: e.generation,
    ...(e.bakeMs !== undefined ? { bakeMs: e.bakeMs } : {}),
  };
}

function refusal(err: unknown): unknown {
  if (!(err instanceof RequestRefused)) return err;
  switch (err.kind) {
    case 'windows':
      return new RpcError(ERROR_CODES.RELOAD_REFUSED_WINDOWS, err.message);
    case 'stopping':
      return rpcErrors.daemonStopping();
    case 'unknown-group':
      return new RpcError(ERROR_CODES.UNKNOWN_GROUP, err.message);
    case 'rollback-refused':
      return new RpcError(ERROR_CODES.ROLLBACK_REFUSED, err.message);
  }
}

function reportOutcome(report: ReloadReport): ReloadReport {
  if (report.state === 'succeeded') return report;
  const code = report.errorCode ?? (report.state === 'aborted' ? ERROR_CODES.RELOAD_ABORTED : ERROR_CODES.RELOAD_FAILED);
  throw new RpcError(code, `reload ${report.id} ${report.state}: ${report.error ?? 'unknown reason'}`, report);
}

/** What `reload --dry-run` reads: the config checked and resolved as a reload would, without binding anything. */
export function previewLoader(configPath: string, setpriv: string | null) {
  return async (): Promise<{ config: Config; specs: Record<string, GenerationSpec> }> => {
    const config = await loadDaemonConfig(configPath, setpriv);
    return { config, specs: await resolveSpecs(config) };
  };
}

/** What the control handlers read for observability (DESIGN §11). */
export interface Observability {
  /** The exposition document (`smoothctl metrics`). */
  metrics(): string;
  /** The metrics listener, or null when the config has none (status `daemon.metrics`). */
  listener(): { listen: string; bound: string | null } | null;
  /** The event stream (`subscribe`). */
  events?: EventHub;
  /** The workers' last lines (`logs`). */
  logs?: LogStore;
}

export function controlHandlers(runtime: Runtime, log: Logger, obs?: Observability, preview?: ReturnType<typeof previewLoader>) {
  const dryRun = async (groups: string[] | null): Promise<ReloadPreview> => {
    if (!preview) throw new RpcError(ERROR_CODES.INTERNAL, 'this smoothd cannot preview a reload');
    let loaded;
    try {
      loaded = await preview();
    } catch (err) {
      if (err instanceof ConfigError) throw new RpcError(ERROR_CODES.CONFIG_INVALID, `config refused, a reload would change nothing: ${err.message}`);
      throw err;
    }
    return previewReload(runtime.snapshot.groups, loaded.config, loaded.specs, groups);
  };

  const roll = async (
    ask: (waiter?: Parameters<Runtime['requestReload']>[2]) => Promise<{ id: number; state: 'running' | 'queued' }>,
    wait: boolean,
    ctx: CallContext,
  ): Promise<unknown> => {
    if (!wait) {
      try {
        return await ask();
      } catch (err) {
        throw refusal(err);
      }
    }
    let resolveReport!: (r: ReloadReport) => void;
    const finished = new Promise<ReloadReport>((r) => (resolveReport = r));
    const waiter = {
      onProgress: (e: ProgressEvent & { reloadId: number }) => {
        if (!ctx.signal.aborted) ctx.notify('reload.progress', progressParams(e));
      },
      resolve: resolveReport,
    };
    try {
      const accepted = await ask(waiter);
      if (accepted.state === 'queued') {
        ctx.notify('reload.progress', { id: accepted.id, event: 'queued', group: null, message: `queued behind the running reload`, done: 0, total: 0 });
      }
    } catch (err) {
      throw refusal(err);
    }
    return reportOutcome(await finished);
  };

  return {
    reload: (p: { groups?: string[]; wait?: boolean; dryRun?: boolean }, ctx: CallContext) =>
      p.dryRun === true
        ? dryRun(p.groups && p.groups.length > 0 ? p.groups : null)
        : roll((w) => runtime.requestReload(p.groups && p.groups.length > 0 ? p.groups : null, 'rpc', w), p.wait === true, ctx),
    restart: (p: { group: string; wait?: boolean }, ctx: CallContext) => roll((w) => runtime.requestRestart(p.group, w), p.wait === true, ctx),
    rollback: (p: { groups?: string[]; to?: number; force?: boolean; wait?: boolean }, ctx: CallContext) =>
      p.to !== undefined && p.groups?.length !== 1
        ? Promise.reject(
            rpcErrors.invalidParams('to', 'to needs exactly one group in groups (generation numbers are per group), e.g. {"groups": ["web"], "to": 3}'),
          )
        : roll(
            (w) => runtime.requestRollback({ groups: p.groups && p.groups.length > 0 ? p.groups : null, to: p.to ?? null, force: p.force === true }, w),
            p.wait === true,
            ctx,
          ),
    status: async () => {
      const doc = runtime.status();
      return obs ? { ...doc, daemon: { ...doc.daemon, metrics: obs.listener() } } : doc;
    },
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4', text: obs ? obs.metrics() : '' }),
    logs: (p: { group?: string; lines?: number; follow?: boolean }, ctx: CallContext): Promise<unknown> => {
      const store = obs?.logs;
      if (!store) return Promise.reject(rpcErrors.invalidParams('group', 'this smoothd keeps no logs'));
      const group = p.group ?? null;
      if (group !== null && !runtime.snapshot.groups.some((g) => g.name === group) && !store.hasGroup(group)) {
        const names = runtime.snapshot.groups.map((g) => g.name).join(', ');
        return Promise.reject(new RpcError(ERROR_CODES.UNKNOWN_GROUP, `no group ${JSON.stringify(group)}; groups: ${names}`));
      }
      const n = p.lines ?? 20;
      if (n < 0 || n > 1_000_000) return Promise.reject(rpcErrors.invalidParams('lines', `lines must be from 0 to 1000000, got ${n}`));
      const last = store.tail(group, n).map(toRecord);
      if (p.follow !== true) return Promise.resolve({ lines: last });
      // Following: the tail, then each new line as a `log` notification until the connection closes.
      return new Promise((resolve) => {
        for (const r of last) ctx.notify('log', r);
        const stop = store.follow(group, (l) => ctx.notify('log', toRecord(l)));
        const end = (): void => {
          stop();
          resolve(null);
        };
        if (ctx.signal.aborted) return end();
        ctx.signal.addEventListener('abort', end, { once: true });
      });
    },
    subscribe: (p: { events?: string[] }, ctx: CallContext): Promise<null> => {
      const hub = obs?.events;
      if (!hub) return Promise.reject(rpcErrors.invalidParams('events', 'this smoothd has no event stream'));
      const unknown = (p.events ?? []).filter((n) => !(EVENT_NAMES as readonly string[]).includes(n));
      if (unknown.length > 0) {
        return Promise.reject(
          rpcErrors.invalidParams('events', `unknown event ${JSON.stringify(unknown[0])}; known events: ${EVENT_NAMES.join(', ')} (omit events to get all)`),
        );
      }
      const names = p.events && p.events.length > 0 ? p.events : null;
      // The answer comes only when the connection closes: a pending request, so the idle timeout leaves it open.
      return new Promise((resolve) => {
        const stop = hub.subscribe(names, (e) => ctx.notify(EVENT_NOTIFICATION, e));
        const end = (): void => {
          stop();
          log.debug({ subscribers: hub.subscriberCount }, 'event subscriber left');
          resolve(null);
        };
        if (ctx.signal.aborted) return end();
        ctx.signal.addEventListener('abort', end, { once: true });
        log.debug({ events: names, subscribers: hub.subscriberCount }, 'event subscriber added');
        ctx.notify('subscribed', { events: names });
      });
    },
    stop: async () => {
      log.info('stop requested over the control socket');
      await runtime.stop(false);
      return { pid: process.pid, state: 'stopping' };
    },
  };
}
