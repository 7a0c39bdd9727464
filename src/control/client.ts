/**
 * A minimal JSON-RPC client for the control socket: connect, send one
 * request, collect notifications, resolve with the result — or reject with a
 * typed error smoothctl maps to an exit code.
 *
 * Imports only node:net and dependency-free modules: `smoothctl status` runs
 * every few seconds from monitoring and must start fast.
 */
import { createConnection, type Socket } from 'node:net';
import { privateSocketProblem } from '../paths.js';
import { LineSplitter } from './framing.js';

/** Base of every error callRpc rejects with. */
export class ControlClientError extends Error {
  constructor(
    message: string,
    readonly socketPath: string,
  ) {
    super(message);
  }
}

/** The daemon answered with an error response. */
export class RpcCallError extends ControlClientError {
  override readonly name = 'RpcCallError';
  constructor(
    readonly code: number,
    message: string,
    readonly data: unknown,
    socketPath: string,
  ) {
    super(message, socketPath);
  }
}

/** Nothing listens on the socket (ENOENT / ECONNREFUSED / not a socket). */
export class DaemonUnreachableError extends ControlClientError {
  override readonly name = 'DaemonUnreachableError';
  constructor(
    socketPath: string,
    readonly errno: string,
    message?: string,
  ) {
    super(
      message ??
        (errno === 'ENOENT' || errno === 'ENOTDIR'
          ? `smoothd is not running (no socket at ${socketPath}); start it with \`systemctl start smoothd\` or \`smoothd --config FILE\``
          : errno === 'ECONNREFUSED'
            ? `smoothd is not running (nothing listens on ${socketPath}; the file is left from a daemon that died); ` +
              `start it with \`systemctl start smoothd\` or \`smoothd --config FILE\``
            : `cannot reach smoothd on ${socketPath} (${errno})`),
      socketPath,
    );
  }
}

/** The socket exists but this user may not connect to it (EACCES / EPERM). */
export class PermissionDeniedError extends ControlClientError {
  override readonly name: string = 'PermissionDeniedError';
  constructor(socketPath: string, message?: string) {
    super(
      message ??
        `permission denied on the control socket ${socketPath}: run smoothctl as root (sudo smoothctl …), ` +
          `or as a member of the group set by socketGroup in the smoothd config (with a socketMode like "0660")`,
      socketPath,
    );
  }
}

/**
 * The socket is in the /tmp/smoothd-$UID fallback and that folder or the
 * socket is not this user's own (a symlink, another owner, a mode other than
 * 0700): smoothctl does not connect, since a planted socket could forge any
 * answer. Exit 77, like other permission problems.
 */
export class UnsafeSocketError extends PermissionDeniedError {
  override readonly name = 'UnsafeSocketError';
}

/**
 * Throws UnsafeSocketError when the private fallback socket at `path` may not
 * be trusted by `uid`; for paths the operator named there is nothing to check.
 */
export function assertPrivateSocket(path: string, uid: number): void {
  const problem = privateSocketProblem(path, uid);
  if (problem !== null) throw new UnsafeSocketError(path, problem);
}

/** No answer within the timeout (the daemon carries on). */
export class TimeoutError extends ControlClientError {
  override readonly name = 'TimeoutError';
  constructor(
    socketPath: string,
    readonly timeoutMs: number,
  ) {
    super(`no answer from smoothd on ${socketPath} within ${formatMs(timeoutMs)}`, socketPath);
  }
}

/** The daemon closed the connection before answering (e.g. it exited). */
export class ConnectionLostError extends ControlClientError {
  override readonly name = 'ConnectionLostError';
  constructor(socketPath: string, detail?: string) {
    super(
      `smoothd closed the connection on ${socketPath} before answering${detail ? ` (${detail})` : ''}; ` +
        `did it exit? see its log (journalctl -u smoothd)`,
      socketPath,
    );
  }
}

/** Something answered that is not a smoothd reply. */
export class ProtocolError extends ControlClientError {
  override readonly name = 'ProtocolError';
  constructor(socketPath: string, detail: string) {
    super(`unexpected reply on ${socketPath} (is it a smoothd socket?): ${detail}`, socketPath);
  }
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)} s`;
}

export interface CallOptions {
  /** Reject with TimeoutError after this long (connect included). Default: no limit. */
  timeoutMs?: number;
  /** Called for each notification the daemon sends on this connection. */
  onNotification?: (method: string, params: unknown) => void;
  /** Longest reply line accepted; default 64 MiB. */
  maxLineBytes?: number;
  /** Called with the JSON text of the result, as the daemon sent it, just before `result` resolves. */
  onResultText?: (text: string) => void;
}

export interface RpcCall {
  /** The result, or a typed ControlClientError. */
  result: Promise<unknown>;
  /** Resolves when the connection has closed (whoever closed it). Never rejects. */
  closed: Promise<void>;
  /** Close the connection now. */
  close(): void;
}

function errnoOf(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : 'EUNKNOWN';
}

/** Map a connect-time socket error to a typed error. */
export function connectError(path: string, err: unknown): ControlClientError {
  const code = errnoOf(err);
  if (code === 'EACCES' || code === 'EPERM') return new PermissionDeniedError(path);
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTDIR' || code === 'ENOTSOCK') {
    return new DaemonUnreachableError(path, code);
  }
  if (code === 'EAGAIN') {
    return new DaemonUnreachableError(path, code, `smoothd on ${path} is not accepting connections (its backlog is full)`);
  }
  return new DaemonUnreachableError(path, code, `cannot connect to ${path}: ${err instanceof Error ? err.message : String(err)}`);
}

const REQUEST_ID = 1;
const RESULT_PREFIX = `{"jsonrpc":"2.0","id":${REQUEST_ID},"result":`;

/**
 * The JSON text of `result` in a reply line smoothd wrote (`{"jsonrpc":"2.0",
 * "id":1,"result":...}`, no whitespace), without serializing it again; null
 * when the line has another shape (then callers serialize the parsed value).
 */
export function resultText(line: string, parsed: object): string | null {
  const keys = Object.keys(parsed);
  if (keys.length !== 3 || keys[2] !== 'result' || !line.startsWith(RESULT_PREFIX)) return null;
  const end = line.endsWith('\r') ? line.length - 2 : line.length - 1;
  if (line[end] !== '}') return null;
  return line.slice(RESULT_PREFIX.length, end);
}

/**
 * Send one request and keep the connection: `result` settles with the answer,
 * `closed` when the connection ends. callRpc() is this plus close().
 */
export function openRpcCall(path: string, method: string, params: unknown, opts: CallOptions = {}): RpcCall {
  let settle!: { resolve: (v: unknown) => void; reject: (e: unknown) => void };
  const result = new Promise<unknown>((resolve, reject) => {
    settle = { resolve, reject };
  });
  let onClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    onClosed = resolve;
  });
  let settled = false;
  let connected = false;
  let timer: NodeJS.Timeout | null = null;

  const socket: Socket = createConnection({ path });

  const finish = (fn: () => void): void => {
    if (settled) return;
    settled = true;
    if (timer !== null) clearTimeout(timer);
    timer = null;
    fn();
  };
  const fail = (err: ControlClientError): void => finish(() => settle.reject(err));

  if (opts.timeoutMs !== undefined && Number.isFinite(opts.timeoutMs)) {
    const ms = opts.timeoutMs;
    timer = setTimeout(() => {
      fail(new TimeoutError(path, ms));
      socket.destroy();
    }, ms);
  }

  const splitter = new LineSplitter({
    maxLineBytes: opts.maxLineBytes ?? 64 * 1024 * 1024,
    onLine: (line) => {
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        fail(new ProtocolError(path, `not JSON: ${line.slice(0, 80)}`));
        socket.destroy();
        return;
      }
      if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
        fail(new ProtocolError(path, `not a JSON-RPC message: ${line.slice(0, 80)}`));
        socket.destroy();
        return;
      }
      const m = msg as { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };
      if (typeof m.method === 'string' && m.id === undefined) {
        if (!settled) {
          try {
            opts.onNotification?.(m.method, m.params);
          } catch {
            // a failing progress printer must not lose the answer
          }
        }
        return;
      }
      // Our answer, or an error the server could not attribute (id null: oversize, too many connections).
      if (m.id !== REQUEST_ID && !(m.id === null && m.error !== undefined)) return;
      if (m.error !== undefined) {
        const e = m.error as { code?: unknown; message?: unknown; data?: unknown } | null;
        const code = typeof e?.code === 'number' ? e.code : -32099;
        const message = typeof e?.message === 'string' ? e.message : 'unknown error';
        fail(new RpcCallError(code, message, e?.data, path));
      } else if ('result' in m) {
        if (opts.onResultText) {
          const text = resultText(line, m);
          if (text !== null) opts.onResultText(text);
        }
        finish(() => settle.resolve(m.result));
      } else {
        fail(new ProtocolError(path, 'a reply with neither result nor error'));
      }
    },
    onOversize: (_seen, limit) => {
      fail(new ProtocolError(path, `a reply line over ${limit} bytes`));
      socket.destroy();
    },
  });

  socket.on('connect', () => {
    connected = true;
    socket.write(JSON.stringify({ jsonrpc: '2.0', method, params, id: REQUEST_ID }) + '\n');
  });
  socket.on('data', (chunk: Buffer) => splitter.push(chunk));
  socket.on('end', () => {
    const last = splitter.end();
    if (last !== null) splitter.push(last + '\n');
    socket.end();
  });
  socket.on('error', (err) => {
    // After an answer, a reset (the daemon closed with our bytes unread) is not news.
    if (!connected) fail(connectError(path, err));
    else fail(new ConnectionLostError(path, errnoOf(err)));
  });
  socket.on('close', () => {
    if (!connected) fail(new DaemonUnreachableError(path, 'ECONNREFUSED'));
    else fail(new ConnectionLostError(path));
    onClosed();
  });

  return {
    result,
    closed,
    close: () => {
      socket.destroy();
    },
  };
}

/**
 * Connect to the control socket at `path`, call `method` with `params`, and
 * resolve with the result. Rejects with RpcCallError (error response),
 * DaemonUnreachableError, PermissionDeniedError, TimeoutError,
 * ConnectionLostError or ProtocolError.
 */
export async function callRpc(path: string, method: string, params: unknown, opts: CallOptions = {}): Promise<unknown> {
  const call = openRpcCall(path, method, params, opts);
  try {
    return await call.result;
  } finally {
    call.close();
  }
}

export type SocketState = 'answering' | 'unreachable' | 'denied';

/** Does anything accept connections on `path`? (Connects and closes at once.) */
export function probeControlSocket(path: string, timeoutMs = 1000): Promise<SocketState> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('answering');
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('answering');
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      const code = errnoOf(err);
      resolve(code === 'EACCES' || code === 'EPERM' ? 'denied' : code === 'EAGAIN' ? 'answering' : 'unreachable');
    });
  });
}

/**
 * Open a connection that sends nothing and resolve when the daemon closes it
 * (it closes every connection when it exits). Resolves at once if the socket
 * does not answer.
 */
export function waitForConnectionClose(path: string): { closed: Promise<void>; cancel(): void } {
  const socket = createConnection({ path });
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { closed, cancel: () => socket.destroy() };
}
