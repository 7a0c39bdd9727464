/**
 * sd_notify for smoothd itself (DESIGN §7): READY=1, RELOADING=1 with
 * MONOTONIC_USEC, STATUS=, STOPPING=1 and WATCHDOG=1, sent to the socket
 * systemd names in NOTIFY_SOCKET.
 *
 * Node has no AF_UNIX datagram sockets, so a path socket is written with the
 * optional `unix-dgram` package, loaded only when NOTIFY_SOCKET is set. For an
 * abstract socket (`@name`, which unix-dgram cannot address) or when the
 * package is missing, each message is handed to the `systemd-notify` command
 * instead; it is spawned directly by smoothd, and systemd-notify sends with
 * its parent's pid as the sender, so `NotifyAccess=main` still accepts it
 * when smoothd runs as root. Unprivileged it cannot: the kernel refuses
 * credentials for another pid and libsystemd then sends with systemd-notify's
 * own pid, which only `NotifyAccess=all` accepts — and only while that
 * process lives, so smoothd then runs it without `--no-block` (it waits until
 * systemd has processed the message) and warns once at start, naming the
 * fix. Without NOTIFY_SOCKET everything here is a no-op.
 */
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';
import { loadUnixDgram, type UnixDgramModule } from '../runtime/notify-socket.js';

/** Fields of one notification, sent as `KEY=VALUE` lines in one datagram. */
export type NotifyFields = Record<string, string>;

export interface NotifyTransport {
  readonly kind: 'unix-dgram' | 'systemd-notify';
  send(message: string, fields: NotifyFields): Promise<void>;
  close(): void;
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  /** Overrides the transport (tests). */
  transport?: NotifyTransport;
  /** Overrides the datagram package (tests pass null to force the command fallback). */
  dgram?: UnixDgramModule | null;
  /** The systemd-notify command (tests). */
  command?: string;
  /** smoothd's uid (tests); default process.getuid(). */
  uid?: number;
}

/** CLOCK_MONOTONIC in microseconds (libuv's hrtime reads CLOCK_MONOTONIC on Linux), as systemd wants it. */
export function monotonicUsec(): string {
  return String(process.hrtime.bigint() / 1000n);
}

/** Encodes fields as an sd_notify message; newlines in a value would start a new key, so they become spaces. */
export function encodeNotify(fields: NotifyFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${v.replace(/[\r\n]+/g, ' ')}`)
    .join('\n');
}

class DgramTransport implements NotifyTransport {
  readonly kind = 'unix-dgram' as const;
  constructor(
    private readonly mod: UnixDgramModule,
    private readonly path: string,
  ) {}

  send(message: string): Promise<void> {
    // A socket per message: an open unix-dgram socket keeps a libuv poll handle
    // (and so the process) alive, and smoothd sends a few messages a minute.
    return new Promise((resolve, reject) => {
      let sock;
      try {
        sock = this.mod.createSocket('unix_dgram');
      } catch (err) {
        reject(err as Error);
        return;
      }
      sock.on('error', () => undefined);
      const buf = Buffer.from(message);
      sock.send(buf, 0, buf.length, this.path, (err?: Error) => {
        try {
          sock.close();
        } catch {
          // already closed
        }
        if (err) reject(err);
        else resolve();
      });
    });
  }

  close(): void {}
}

class CommandTransport implements NotifyTransport {
  readonly kind = 'systemd-notify' as const;
  constructor(
    private readonly command: string,
    private readonly env: NodeJS.ProcessEnv,
    /** Root: systemd-notify sends as smoothd's pid and need not wait. Else it must wait (see the top of this file). */
    private readonly privileged: boolean,
  ) {}

  send(_message: string, fields: NotifyFields): Promise<void> {
    const args = [...(this.privileged ? ['--no-block'] : []), ...Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/[\r\n]+/g, ' ')}`)];
    return new Promise((resolve, reject) => {
      execFile(this.command, args, { env: this.env, timeout: 5_000 }, (err, _out, stderr) => {
        if (err) reject(new Error(`${this.command} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
        else resolve();
      });
    });
  }

  close(): void {}
}

/**
 * The notifier smoothd uses. Messages are sent in order (one at a time), and a
 * failure is logged once per kind of failure, never thrown: losing a STATUS
 * line must not disturb the supervisor.
 */
export class SystemdNotifier {
  private chain: Promise<void> = Promise.resolve();
  private lastStatus: string | null = null;
  private readonly warned = new Set<string>();
  readonly socket: string | null;
  private readonly transport: NotifyTransport | null;

  constructor(
    private readonly log: Pick<Logger, 'warn' | 'debug'>,
    opts: NotifierOptions = {},
  ) {
    const env = opts.env ?? process.env;
    const socket = env.NOTIFY_SOCKET;
    this.socket = socket && socket.length > 0 ? socket : null;
    if (!this.socket) {
      this.transport = null;
      return;
    }
    if (opts.transport) {
      this.transport = opts.transport;
      return;
    }
    const command = opts.command ?? 'systemd-notify';
    const dgram = this.socket.startsWith('/') ? (opts.dgram !== undefined ? opts.dgram : loadUnixDgram()) : null;
    if (dgram) {
      this.transport = new DgramTransport(dgram, this.socket);
    } else {
      if (this.socket.startsWith('/')) {
        log.debug({ socket: this.socket }, 'unix-dgram is not installed: sending systemd notifications with systemd-notify');
      }
      const uid = opts.uid ?? process.getuid?.() ?? 0;
      this.transport = new CommandTransport(command, env, uid === 0);
      if (uid !== 0) {
        log.warn(
          { socket: this.socket, uid },
          `NOTIFY_SOCKET ${this.socket} ${this.socket.startsWith('/') ? 'needs unix-dgram, which is not installed' : 'is abstract'}, so smoothd sends ` +
            `with the systemd-notify command; as a non-root user it cannot send on smoothd's behalf, and systemd accepts ` +
            `its messages only with NotifyAccess=all (systemctl edit smoothd: [Service] NotifyAccess=all)` +
            (this.socket.startsWith('/') ? ' or once unix-dgram is installed (npm install -g unix-dgram)' : ''),
        );
      }
    }
  }

  /** True when NOTIFY_SOCKET is set. */
  get enabled(): boolean {
    return this.transport !== null;
  }

  get transportKind(): NotifyTransport['kind'] | null {
    return this.transport?.kind ?? null;
  }

  /** Sends fields as one notification; resolves when it was handed to the socket (never rejects). */
  notify(fields: NotifyFields): Promise<void> {
    const t = this.transport;
    if (!t || Object.keys(fields).length === 0) return Promise.resolve();
    if (fields.STATUS !== undefined) this.lastStatus = fields.STATUS;
    const message = encodeNotify(fields);
    this.chain = this.chain.then(
      () =>
        t.send(message, fields).catch((err: Error) => {
          const key = err.message.split(':')[0] ?? err.message;
          if (this.warned.has(key)) return;
          this.warned.add(key);
          this.log.warn({ socket: this.socket, err: err.message, message }, 'cannot notify systemd (further failures of this kind are not logged)');
        }),
    );
    return this.chain;
  }

  ready(status?: string): Promise<void> {
    return this.notify(status === undefined ? { READY: '1' } : { READY: '1', STATUS: status });
  }

  reloading(status?: string): Promise<void> {
    const f: NotifyFields = { RELOADING: '1', MONOTONIC_USEC: monotonicUsec() };
    if (status !== undefined) f.STATUS = status;
    return this.notify(f);
  }

  stopping(status?: string): Promise<void> {
    return this.notify(status === undefined ? { STOPPING: '1' } : { STOPPING: '1', STATUS: status });
  }

  /** STATUS=text, only when it differs from the last one sent. */
  status(text: string): Promise<void> {
    if (text === this.lastStatus) return Promise.resolve();
    return this.notify({ STATUS: text });
  }

  watchdog(): Promise<void> {
    return this.notify({ WATCHDOG: '1' });
  }

  /** Resolves once every message queued so far was sent (or failed). */
  flush(): Promise<void> {
    return this.chain;
  }

  close(): void {
    this.transport?.close();
  }
}

// ---------------------------------------------------------------- watchdog

/** The watchdog interval systemd asked for (WATCHDOG_USEC), in ms, or null when it is off or meant for another process. */
export function watchdogUsec(env: NodeJS.ProcessEnv, pid: number = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return null;
  return usec;
}

export interface WatchdogOptions {
  /** WATCHDOG_USEC. Pings are sent every half of it. */
  usec: number;
  /** Returns null when the supervisor is healthy, else why it is not. */
  probe(): string | null;
  ping(): void;
  log: Pick<Logger, 'warn' | 'info'>;
  setInterval?(fn: () => void, ms: number): unknown;
  clearInterval?(handle: unknown): void;
}

/**
 * Sends WATCHDOG=1 every WATCHDOG_USEC/2, but only after the probe says the
 * supervisor is healthy. The ping comes from a timer, so a blocked event loop
 * stops it by itself; the probe (smoothd passes Runtime#probe) pushes a no-op
 * event through the runtime's event loop and the state machine and checks it
 * was handled — a loop wedged in a half-finished dispatch, or a state on which
 * the machine throws for every event, stops the pings, and systemd then
 * restarts smoothd (its workers keep serving until the new one takes over the
 * sockets; with smoothd.socket nothing is refused).
 */
export class Watchdog {
  private handle: unknown = null;
  private unhealthySince: string | null = null;
  readonly intervalMs: number;

  constructor(private readonly opts: WatchdogOptions) {
    this.intervalMs = Math.max(1, Math.floor(opts.usec / 2000));
  }

  start(): void {
    if (this.handle !== null) return;
    const set = this.opts.setInterval ?? ((fn: () => void, ms: number) => setInterval(fn, ms).unref());
    this.handle = set(() => this.tick(), this.intervalMs);
    this.tick();
  }

  /** One check; exposed for tests. Returns true when it pinged. */
  tick(): boolean {
    let problem: string | null;
    try {
      problem = this.opts.probe();
    } catch (err) {
      problem = `the health probe threw: ${(err as Error).message}`;
    }
    if (problem === null) {
      if (this.unhealthySince !== null) this.opts.log.info('supervisor healthy again: watchdog pings resume');
      this.unhealthySince = null;
      this.opts.ping();
      return true;
    }
    if (this.unhealthySince !== problem) {
      this.opts.log.warn({ problem }, 'supervisor unhealthy: not pinging the systemd watchdog (systemd restarts smoothd if this lasts)');
      this.unhealthySince = problem;
    }
    return false;
  }

  stop(): void {
    if (this.handle === null) return;
    const clear = this.opts.clearInterval ?? ((h: unknown) => clearInterval(h as NodeJS.Timeout));
    clear(this.handle);
    this.handle = null;
  }
}
