/**
 * What systemd hears from smoothd (DESIGN §7), driven by the runtime's
 * `onState` hook:
 *
 * - `READY=1` once the first workers are ready (a failed start exits 71
 *   instead, after `STOPPING=1`);
 * - `RELOADING=1` + `MONOTONIC_USEC=` when a reload starts, `READY=1` when it
 *   ends (succeeded or failed: either way the old or new workers serve);
 * - `STATUS=` one line kept current: after every batch of events the runtime
 *   handles (`onSettled`), sent when the line changed — so progress (workers
 *   replaced, crashed, restarted) shows at once, without polling;
 * - `STOPPING=1` when a stop begins;
 * - `WATCHDOG=1` every WATCHDOG_USEC/2 while Runtime#probe says the
 *   supervisor loop handles events (see Watchdog).
 *
 * Without NOTIFY_SOCKET it does nothing at all: no timers, no imports.
 */
import type { Logger } from 'pino';
import { statusLine } from '../supervisor/machine.js';
import type { Effect, MachineState } from '../supervisor/types.js';
import { SystemdNotifier, Watchdog, watchdogUsec, type NotifierOptions } from './notify.js';

/** What the integration needs from the runtime. */
export interface Supervised {
  readonly snapshot: MachineState;
  probe(): string | null;
}

export interface IntegrationOptions extends NotifierOptions {
  notifier?: SystemdNotifier;
  pid?: number;
}

export class SystemdIntegration {
  readonly notifier: SystemdNotifier;
  private watchdog: Watchdog | null = null;
  private readySent = false;
  /** After exit: the final STATUS is sent, nothing may overwrite it. */
  private exited = false;
  private closed = false;

  constructor(
    private readonly log: Pick<Logger, 'warn' | 'info' | 'debug'>,
    private readonly opts: IntegrationOptions = {},
  ) {
    this.notifier = opts.notifier ?? new SystemdNotifier(log, opts);
  }

  get enabled(): boolean {
    return this.notifier.enabled;
  }

  /** The runtime's onState hook. */
  readonly onState = (state: MachineState, effect: Effect): void => {
    if (!this.enabled || this.closed) return;
    switch (effect.type) {
      case 'daemon.state':
        switch (effect.state) {
          case 'reloading':
            void this.notifier.reloading(effect.status);
            return;
          case 'running':
            // From reloading: the reload ended. From starting: daemon.ready follows.
            if (this.readySent) void this.notifier.ready(effect.status);
            else void this.notifier.status(effect.status);
            return;
          case 'stopping':
            void this.notifier.stopping(effect.status);
            return;
          default:
            void this.notifier.status(effect.status);
            return;
        }
      case 'daemon.ready':
        this.readySent = true;
        void this.notifier.ready(statusLine(state, Date.now()));
        return;
      case 'exit': {
        const f = state.startFailure;
        if (effect.code !== 0) {
          void this.notifier.status(
            f ? `start failed: ${f.group} worker ${f.workerId}: ${f.reason}` : `start failed (exit ${effect.code})`,
          );
        } else {
          void this.notifier.status('stopped');
        }
        this.exited = true;
        this.stopWatchdog();
        return;
      }
      default:
        return;
    }
  };

  /** The runtime's onSettled hook: STATUS follows the state (the notifier skips an unchanged line). */
  readonly onSettled = (state: MachineState): void => {
    if (!this.enabled || this.closed || this.exited) return;
    void this.notifier.status(statusLine(state, Date.now()));
  };

  /** Starts the watchdog when systemd asked for one. */
  attach(runtime: Supervised): void {
    if (!this.enabled || this.closed) return;
    const usec = watchdogUsec(this.opts.env ?? process.env, this.opts.pid ?? process.pid);
    if (usec !== null) {
      this.watchdog = new Watchdog({
        usec,
        probe: () => runtime.probe(),
        ping: () => void this.notifier.watchdog(),
        log: this.log,
      });
      this.log.info({ everyMs: this.watchdog.intervalMs }, 'systemd watchdog on: pinging while the supervisor is healthy');
      this.watchdog.start();
    }
  }

  private stopWatchdog(): void {
    this.watchdog?.stop();
    this.watchdog = null;
  }

  /** Stops the watchdog and waits for queued notifications to be sent. */
  async close(): Promise<void> {
    this.stopWatchdog();
    this.closed = true;
    await this.notifier.flush();
    this.notifier.close();
  }
}
