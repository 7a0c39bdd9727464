/**
 * `smoothd`: the daemon's command line (DESIGN §2).
 *
 * Exit codes: 0 clean stop, 64 usage error, 71 start failed (bind, spawn,
 * first readiness, control socket in use), 78 config missing or invalid.
 *
 * Arguments are parsed by hand: the daemon has seven flags, and not loading an
 * argument library keeps its resident memory down for its whole life.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LevelWithSilent, Logger } from 'pino';
import { DEFAULT_CONFIG_PATH } from '../config/load.js';
import { ConfigError, type Config } from '../config/types.js';
import { bindListen, controlHandlers, loadDaemonConfig, previewLoader, reloadLoader, resolveSpecs, type Observability } from '../daemon.js';
import { MetricsCollector } from '../metrics/collector.js';
import { EventHub } from '../observe/events.js';
import { LogStore } from '../observe/logs.js';
import { DEFAULT_LOG_LIMITS } from '../config/schema.js';
import type { MetricsServer } from '../metrics/http.js';
import { createLogger, LOG_LEVELS, type LogFormat } from '../log.js';
import { checkSocketPath, currentUid, ensurePrivateSocketFolder, resolveSocketPathWithSource } from '../paths.js';
import { Runtime } from '../runtime/runtime.js';
import { inheritedSystemdSockets, SocketTable } from '../runtime/sockets.js';
import { initMode, Reaper, startInit } from '../runtime/reaper.js';
import { findSetpriv } from '../runtime/spawn.js';
import { SystemdIntegration } from '../systemd/integration.js';

export const EXIT_OK = 0;
export const EXIT_USAGE = 64;
export const EXIT_START_FAILED = 71;
export const EXIT_CONFIG = 78;

interface Args {
  config: string;
  socket: string | undefined;
  logLevel: LevelWithSilent;
  logFormat: LogFormat | null;
  check: boolean;
  init: boolean;
  help: boolean;
  version: boolean;
}

const HELP = `Usage: smoothd [--config FILE] [--socket PATH] [--log-level LEVEL] [--log-format json|pretty] [--check] [--init]

Runs a service's workers and replaces them with new code without a failed request.

Options:
  --config FILE        config file (YAML or JSON); default ${DEFAULT_CONFIG_PATH}
  --socket PATH        control socket; default $SMOOTHD_SOCKET, $RUNTIME_DIRECTORY/smoothd.sock,
                       /run/smoothd/smoothd.sock (root), $XDG_RUNTIME_DIR/smoothd/smoothd.sock,
                       /tmp/smoothd-$UID/smoothd.sock
  --log-level LEVEL    ${LOG_LEVELS.join(', ')}; default info
  --log-format FORMAT  json (default when stdout is not a terminal) or pretty
  --check              validate the config (commands, folders, addresses) and exit 0 or 78
  --init               init mode outside PID 1: become a child subreaper and reap orphaned zombies
                       (on by itself when smoothd is PID 1, e.g. a container's entrypoint)
  --help, --version

Signals: SIGHUP reloads; SIGTERM/SIGINT stop gracefully (a second one kills the workers).
Exit codes: 0 clean stop, 64 usage error, 71 start failed, 78 config missing or invalid.
Control it with smoothctl (smoothctl --help).`;

class UsageError extends Error {}

export function parseArgs(argv: string[]): Args {
  const args: Args = { config: DEFAULT_CONFIG_PATH, socket: undefined, logLevel: 'info', logFormat: null, check: false, init: false, help: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const flag = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string => {
      if (raw.startsWith('--') && eq > 0) return raw.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--config':
      case '-c':
        args.config = value();
        break;
      case '--socket':
        args.socket = value();
        break;
      case '--log-level': {
        const v = value();
        if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new UsageError(`--log-level ${JSON.stringify(v)} is not a level; use one of ${LOG_LEVELS.join(', ')}`);
        args.logLevel = v as LevelWithSilent;
        break;
      }
      case '--log-format': {
        const v = value();
        if (v !== 'json' && v !== 'pretty') throw new UsageError(`--log-format ${JSON.stringify(v)} is not a format; use json or pretty`);
        args.logFormat = v;
        break;
      }
      case '--check':
        args.check = true;
        break;
      case '--init':
        args.init = true;
        break;
      case '--help':
      case '-h':
        args.help = true;
        break;
      case '--version':
      case '-V':
        args.version = true;
        break;
      default:
        throw new UsageError(raw.startsWith('-') ? `unknown option ${raw}` : `unexpected argument ${JSON.stringify(raw)} (smoothd takes no commands; use smoothctl to control it)`);
    }
  }
  return args;
}

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/**
 * For tests only (undocumented for operators): SMOOTHD_CONTROL_IDLE_MS
 * shortens the control connections' idle timeout (default 60 s), so a test
 * can show that a connection waiting on a long reload is never closed as idle.
 */
export function controlTestOverrides(env: NodeJS.ProcessEnv): { idleTimeoutMs?: number } {
  const idle = env.SMOOTHD_CONTROL_IDLE_MS;
  return idle !== undefined && /^\d+$/.test(idle) ? { idleTimeoutMs: Number(idle) } : {};
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`smoothd: ${err.message}\nRun smoothd --help for the options.\n`);
    return EXIT_USAGE;
  }
  if (args.help) {
    process.stdout.write(`${HELP}\n`);
    return EXIT_OK;
  }
  if (args.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return EXIT_OK;
  }

  // Init mode starts before smoothd spawns anything (getent, workers): it must know every child libuv spawned.
  const mode = initMode(process.pid, args.init);
  const init = mode.on && !args.check ? startInit(mode) : null;

  // Found once: the config check refuses `user`/`group` without it, and the workers are spawned through it.
  const setpriv = findSetpriv();
  let config: Config;
  try {
    config = await loadDaemonConfig(args.config, setpriv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`smoothd: ${err.message}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }
  if (args.check) {
    const workers = config.groups.reduce((n, g) => n + g.count, 0);
    process.stdout.write(`smoothd: ${config.path}: OK (${config.groups.length} group${config.groups.length === 1 ? '' : 's'}, ${workers} worker${workers === 1 ? '' : 's'})\n`);
    return EXIT_OK;
  }

  let socketPath: string;
  let privateFolder: boolean;
  try {
    const resolved = resolveSocketPathWithSource({ flag: args.socket, env: process.env, uid: currentUid() });
    socketPath = checkSocketPath(resolved.path);
    privateFolder = resolved.source === 'tmp';
  } catch (err) {
    process.stderr.write(`smoothd: ${(err as Error).message}\n`);
    return EXIT_USAGE;
  }

  const log = await createLogger(args.logLevel, args.logFormat);
  if (init instanceof Error) log.warn(init.message);
  else if (init !== null) log.info({ mode: mode.on ? mode.reason : null }, mode.on && mode.reason === 'pid1' ? 'smoothd is PID 1: it reaps orphaned zombies' : 'init mode (--init): smoothd is a child subreaper and reaps orphaned zombies');
  const reaper = init instanceof Reaper ? init : null;
  if (reaper) reaper.onReaped = (r) => log.debug({ pid: r.pid, code: r.code, signal: r.signal }, 'reaped an orphaned process');
  try {
    return await run(config, socketPath, privateFolder, setpriv, log, reaper);
  } finally {
    reaper?.close();
  }
}

/**
 * Signals from the first moment smoothd may hold anything (DESIGN §2, §5).
 * The handlers are installed before the control socket probe and before any
 * listen socket is bound, so an early SIGHUP or SIGTERM never kills a
 * half-started smoothd with its ports bound (Node's default action for both
 * is to die). Before the runtime exists: SIGHUP is remembered and becomes one
 * reload once the runtime runs (the machine queues it while starting);
 * SIGTERM/SIGINT make the start give up at its next step, release what it
 * holds and exit 0 without starting a worker.
 */
class DaemonSignals {
  private runtime: Runtime | null = null;
  private stops = 0;
  private hupPending = false;
  private readonly onStop = (sig: NodeJS.Signals): void => {
    this.stops += 1;
    if (this.runtime === null) {
      this.log.info({ signal: sig }, 'stop signal while starting: smoothd releases what it holds and exits before starting any worker');
      return;
    }
    this.log.info({ signal: sig }, this.stops === 1 ? 'stopping gracefully' : 'second stop signal: killing the workers');
    this.runtime.signalStop(this.stops > 1);
  };
  private readonly onHup = (): void => {
    if (this.runtime === null) {
      if (!this.hupPending) this.log.info('SIGHUP while starting: the reload is queued until smoothd runs');
      this.hupPending = true;
      return;
    }
    this.log.info('SIGHUP: reloading');
    this.reload(this.runtime);
  };

  constructor(private readonly log: Logger) {
    process.on('SIGTERM', this.onStop);
    process.on('SIGINT', this.onStop);
    process.on('SIGHUP', this.onHup);
  }

  /** True once a stop signal came before the runtime started: the start must give up. */
  get stopRequested(): boolean {
    return this.runtime === null && this.stops > 0;
  }

  /** From now on signals go to the started runtime; a SIGHUP that came early is handed over. */
  attach(runtime: Runtime): void {
    this.runtime = runtime;
    if (this.hupPending) {
      this.hupPending = false;
      this.reload(runtime);
    }
  }

  private reload(runtime: Runtime): void {
    runtime.requestReload(null, 'signal').catch((err: Error) => this.log.warn({ err: err.message }, 'reload refused'));
  }

  close(): void {
    process.off('SIGTERM', this.onStop);
    process.off('SIGINT', this.onStop);
    process.off('SIGHUP', this.onHup);
  }
}

async function run(config: Config, socketPath: string, privateFolder: boolean, setpriv: string | null, log: Logger, reaper: Reaper | null): Promise<number> {
  const signals = new DaemonSignals(log);
  try {
    return await runDaemon(config, socketPath, privateFolder, setpriv, log, signals, reaper);
  } finally {
    signals.close();
  }
}

function stoppedWhileStarting(log: Logger): number {
  log.info({ exitCode: EXIT_OK }, 'smoothd stopped before it started any worker');
  return EXIT_OK;
}

async function runDaemon(
  config: Config,
  socketPath: string,
  privateFolder: boolean,
  setpriv: string | null,
  log: Logger,
  signals: DaemonSignals,
  reaper: Reaper | null,
): Promise<number> {
  // The /tmp/smoothd-$UID fallback can be planted by another user: check it before anything connects there.
  const folderProblem = privateFolder ? ensurePrivateSocketFolder(dirname(socketPath), currentUid()) : null;
  if (folderProblem !== null) {
    log.fatal(folderProblem);
    process.stderr.write(`smoothd: ${folderProblem}\n`);
    return EXIT_START_FAILED;
  }
  // Another smoothd on this control socket: refuse before touching any port it may hold.
  const { probeControlSocket } = await import('../control/client.js');
  if ((await probeControlSocket(socketPath)) === 'answering') {
    const msg = `another smoothd is already running on ${socketPath}; stop it first (smoothctl --socket ${socketPath} stop) or give this one another --socket`;
    log.fatal(msg);
    process.stderr.write(`smoothd: ${msg}\n`);
    return EXIT_START_FAILED;
  }
  if (signals.stopRequested) return stoppedWhileStarting(log);
  const sockets = new SocketTable(inheritedSystemdSockets(process.env, process.pid));
  let specs;
  try {
    specs = await resolveSpecs(config);
    if (signals.stopRequested) {
      sockets.closeAll();
      return stoppedWhileStarting(log);
    }
    await bindListen(config, sockets);
  } catch (err) {
    sockets.closeAll();
    if (err instanceof ConfigError) {
      log.fatal({ issues: err.issues }, `cannot start: ${err.message}`);
      process.stderr.write(`smoothd: ${err.message}\n`);
      return err.issues.some((i) => i.path === 'listen') ? EXIT_START_FAILED : EXIT_CONFIG;
    }
    throw err;
  }

  if (!setpriv) {
    log.warn(
      "setpriv (util-linux) not found: workers will not get SIGTERM if smoothd is killed, and groups with user/group are refused; install util-linux's setpriv",
    );
  }

  // sd_notify to systemd (a no-op without NOTIFY_SOCKET).
  const systemd = new SystemdIntegration(log);
  const collector = new MetricsCollector({ version: packageVersion(), node: process.version });
  const events = new EventHub();
  const logs = new LogStore(DEFAULT_LOG_LIMITS);
  const runtime = new Runtime({
    config,
    specs,
    sockets,
    loadConfig: reloadLoader(config.path, setpriv, config),
    onWorkerLine: (l) => logs.add({ at: Date.now(), group: l.group, workerId: l.workerId, pid: l.pid, generation: l.generation, stream: l.stream, text: l.text }, l.spec.logs),
    observers: [
      (prev, event, next, effects, now) => collector.observe(prev, event, next, effects, now),
      (prev, event, next, effects, now) => events.observe(prev, event, next, effects, now),
    ],
    logger: log,
    version: packageVersion(),
    setpriv,
    notifyDir: dirname(socketPath),
    onState: systemd.onState,
    onSettled: systemd.onSettled,
    ...(reaper ? { onWorkerExit: () => reaper.scan() } : {}),
  });

  let metricsServer: MetricsServer | null = null;
  const observability: Observability = {
    metrics: () => collector.render(runtime.snapshot),
    events,
    logs,
    listener: () => (config.metrics ? { listen: config.metrics.listen, bound: metricsServer?.bound ?? null } : null),
  };
  const { startControlServer } = await import('../control/server.js');
  let control;
  try {
    control = await startControlServer({
      path: socketPath,
      mode: config.socketMode,
      group: config.socketGroup,
      privateFolder,
      handlers: controlHandlers(runtime, log, observability, previewLoader(config.path, setpriv)),
      logger: log,
      ...controlTestOverrides(process.env),
    });
  } catch (err) {
    sockets.closeAll();
    log.fatal({ err: (err as Error).message }, 'cannot open the control socket');
    process.stderr.write(`smoothd: ${(err as Error).message}\n`);
    return EXIT_START_FAILED;
  }
  if (config.metrics) {
    try {
      // node:http is loaded only when the config asks for the listener.
      const { startMetricsServer } = await import('../metrics/http.js');
      metricsServer = await startMetricsServer(config.metrics, observability.metrics);
    } catch (err) {
      await control.close();
      sockets.closeAll();
      log.fatal({ err: (err as Error).message }, 'cannot open the metrics listener');
      process.stderr.write(`smoothd: ${(err as Error).message}\n`);
      return EXIT_START_FAILED;
    }
    log.info({ metrics: metricsServer.bound }, 'serving GET /metrics');
  }
  if (signals.stopRequested) {
    await metricsServer?.close();
    await control.close();
    sockets.closeAll();
    return stoppedWhileStarting(log);
  }
  log.info({ socket: socketPath, config: config.path, pid: process.pid }, 'smoothd started');

  // The daemon must outlive its own bugs: its workers keep serving either way.
  const onBug = (err: unknown): void => log.error({ err }, 'internal error (smoothd keeps running)');
  process.on('uncaughtException', onBug);
  process.on('unhandledRejection', onBug);

  reaper?.start(1000);
  runtime.start();
  signals.attach(runtime);
  systemd.attach(runtime);
  const code = await runtime.exited;
  await systemd.close();
  await metricsServer?.close();
  await control.close();
  sockets.closeAll();
  log.info({ exitCode: code }, code === 0 ? 'smoothd stopped' : 'smoothd start failed; everything is stopped');
  return code;
}
