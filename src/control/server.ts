/**
 * The control socket server (DESIGN §5): JSON-RPC 2.0, one JSON value per
 * line both ways, over a Unix domain socket.
 *
 * Request handling
 * - Lines are split by LineSplitter (max line length, default 1 MiB; a longer
 *   line is answered with -32600 and the connection is closed without
 *   buffering the rest), nesting depth is checked before JSON.parse (-32600),
 *   parse errors are answered here (-32700, id null), and the shape of each
 *   request is checked here (-32600, id null when the id is missing or
 *   invalid) — json-rpc-2.0 gets only well-formed request objects, one at a
 *   time, so its batch quirks (a batch whose replies shrink to one answered
 *   with a bare object) never apply: this module assembles batch replies.
 * - Methods come from the registry in methods.ts; params are validated from
 *   it before the handler runs (-32602 naming the field).
 * - A thrown RpcError becomes its code/message/data; anything else becomes
 *   -32099 "internal error" and is logged — never a crash.
 *
 * Socket file
 * - The parent folder is created with mode 0750 (and the socket group) when
 *   missing, and examined with lstat: a symlink, a folder owned by another
 *   user (not root) or writable by others without the sticky bit is refused.
 *   With `privateFolder` (the /tmp/smoothd-$UID fallback, which another user
 *   can plant) it must be a real folder owned by smoothd's user, mode 0700
 *   (created so when missing). An existing path is examined first: a stale socket (connect
 *   gives ECONNREFUSED) is removed, a live one is an error ("another smoothd
 *   is running"), anything that is not a socket is left alone and is an error.
 * - No moment where the socket is connectable with the wrong mode: it is bound
 *   inside a fresh mkdtemp folder next to the target (mode 0700, so nobody
 *   else can reach it), chmod'ed (and chown'ed to the group), then renamed
 *   onto the target path atomically. Only when that temporary path would
 *   exceed the 107-byte limit does it bind in place and chmod in the same
 *   tick (a window of microseconds at the umask's mode, inside a 0750 folder).
 * - close() stops listening, closes every connection and removes the socket
 *   file if it is still ours (same inode).
 *
 * Limits: max line length, nesting depth, batch size, concurrent connections
 * (at the limit the oldest idle connection is closed; if none is idle the new
 * one gets a one-line TOO_MANY_CONNECTIONS error), in-flight requests per
 * connection (reading pauses), idle timeout (never while a request is
 * pending), replies queued for a client that does not read (reading its
 * requests pauses above readPauseBytes; if it takes nothing for the idle
 * timeout it is dropped), and a write buffer cap for notifications (a client
 * that does not read while progress piles up is dropped).
 */
import { once } from 'node:events';
import { chmodSync, promises as fsp } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import {
  JSONRPCErrorException,
  JSONRPCServer,
  createJSONRPCErrorResponse,
  type JSONRPCErrorResponse,
  type JSONRPCID,
  type JSONRPCRequest,
  type JSONRPCResponse,
} from 'json-rpc-2.0';
import type { Logger } from 'pino';
import { checkSocketPath, ensurePrivateSocketFolder, MAX_SOCKET_PATH_BYTES } from '../paths.js';
import { ERROR_CODES, PROTOCOL_ERRORS, RpcError } from './errors.js';
import { DEFAULT_MAX_LINE_BYTES, encodeLine, jsonDepthExceeds, LineSplitter } from './framing.js';
import {
  METHODS,
  validateParams,
  type MethodSpec,
  type ReloadParams,
  type RestartParams,
  type RollbackParams,
  type StatusParams,
  type StopParams,
} from './methods.js';

export type { ReloadParams, RestartParams, RollbackParams, StatusParams, StopParams } from './methods.js';

export interface CallContext {
  /** Send a notification on the caller's connection (dropped once it closed). */
  notify(method: string, params: unknown): void;
  /**
   * Aborted when the client disconnects or half-closes (EOF), or the server
   * closes. A handler should then stop sending progress; its answer is still
   * written if the connection can carry it. Never a reason to cancel a reload.
   */
  signal: AbortSignal;
}

export interface ControlHandlers {
  reload(p: ReloadParams, ctx: CallContext): Promise<unknown>;
  restart(p: RestartParams, ctx: CallContext): Promise<unknown>;
  rollback(p: RollbackParams, ctx: CallContext): Promise<unknown>;
  status(p: StatusParams, ctx: CallContext): Promise<unknown>;
  stop(p: StopParams, ctx: CallContext): Promise<unknown>;
  /** `metrics` (DESIGN §11); absent in servers without observability. */
  metrics?(p: Record<string, never>, ctx: CallContext): Promise<unknown>;
  /** `subscribe` (DESIGN §11): answers when the connection closes. */
  subscribe?(p: { events?: string[] }, ctx: CallContext): Promise<unknown>;
  /** `logs` (DESIGN §11). */
  logs?(p: { group?: string; lines?: number; follow?: boolean }, ctx: CallContext): Promise<unknown>;
}

/** A method outside the product registry (tests, diagnostics). */
export interface ExtraMethod {
  spec: MethodSpec;
  handler: (params: Record<string, unknown>, ctx: CallContext) => unknown;
}

export interface ControlServerOptions {
  path: string;
  /** Socket file mode, e.g. 0o600. */
  mode: number;
  /** Unix group (name or numeric gid) to chown the socket to. */
  group?: string | null;
  handlers: ControlHandlers;
  logger: Logger;
  /** Longest request line in bytes; default 1 MiB. */
  maxLineBytes?: number;
  /** Concurrent connections; default 2048 (the contract asks for at least 1024). */
  maxConnections?: number;
  /** Close a connection idle this long (no request pending); default 60 000. 0 = never. */
  idleTimeoutMs?: number;
  /** Deepest JSON nesting accepted; default 64. */
  maxDepth?: number;
  /** Most requests in one batch; default 1024. */
  maxBatch?: number;
  /** Lines being handled per connection before reading pauses; default 32. */
  maxInFlightPerConnection?: number;
  /** Bytes queued for a client that does not read before it is dropped; default 16 MiB. */
  maxWriteBufferBytes?: number;
  /**
   * Bytes of replies queued (not yet taken by the client) above which the
   * connection's requests stop being read until the client catches up;
   * default 256 KiB. A client that pipelines requests and never reads its
   * replies thus costs at most about this much, not maxWriteBufferBytes.
   */
  readPauseBytes?: number;
  /** More methods besides the registry (same validation and dispatch). */
  extraMethods?: readonly ExtraMethod[];
  /** Where to look groups up; default /etc/group (tests). */
  groupFile?: string;
  /**
   * The folder is the /tmp/smoothd-$UID fallback: require (or create) a real
   * folder owned by this user with mode 0700. Default false.
   */
  privateFolder?: boolean;
}

/** The limits a server enforces (README "Limits"). */
export interface ControlLimits {
  maxLineBytes: number;
  maxDepth: number;
  maxBatch: number;
  maxConnections: number;
  maxInFlightPerConnection: number;
  readPauseBytes: number;
  maxWriteBufferBytes: number;
  idleTimeoutMs: number;
}

export interface ControlServer {
  path: string;
  /** Open connections (for status and tests). */
  readonly connectionCount: number;
  /** The limits in force: the defaults unless the options changed them. */
  readonly limits: ControlLimits;
  /** Stop listening, close every connection, remove the socket file. Idempotent. */
  close(): Promise<void>;
}

/** The socket path is taken by a daemon that answers. */
export class ControlSocketInUseError extends Error {
  override readonly name = 'ControlSocketInUseError';
  constructor(readonly path: string) {
    super(
      `another smoothd is running on ${path} (it accepts connections); stop it first ` +
        `(\`smoothctl --socket ${path} stop\` or \`systemctl stop smoothd\`), or start this one with another --socket`,
    );
  }
}

/** The socket path cannot be used (exists and is not a socket, permissions, unknown group, ...). */
export class ControlSocketPathError extends Error {
  override readonly name = 'ControlSocketPathError';
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}

const DEFAULTS = {
  maxConnections: 2048,
  idleTimeoutMs: 60_000,
  maxDepth: 64,
  maxBatch: 1024,
  maxInFlightPerConnection: 32,
  maxWriteBufferBytes: 16 * 1024 * 1024,
  readPauseBytes: 256 * 1024,
};

type Reply = JSONRPCResponse | JSONRPCResponse[];

/** After refusing an oversized line, discard at most this much more before closing. */
const LINGER_MAX_BYTES = 4 * 1024 * 1024;
/** How long smoothd waits, after its own FIN, for the peer to close before it destroys the socket. */
const LINGER_MS = 1000;

/**
 * Make sure the fd goes LINGER_MS from now even if the peer never closes its side. The timer is
 * cleared once the socket closes: its closure holds the socket (and whatever holds that, such as a
 * connection and its buffers), and left to run it kept every closed connection in the heap for
 * that second — 1 100 clients that had just hung up kept ~3 MiB alive.
 */
function destroyAfterLinger(socket: Socket): void {
  const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
  socket.once('close', () => clearTimeout(timer));
}

function errorReply(id: JSONRPCID, code: number, message: string, data?: unknown): JSONRPCErrorResponse {
  return createJSONRPCErrorResponse(id, code, message, data);
}

function isValidId(id: unknown): id is JSONRPCID {
  return id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Look a group up by name (or numeric gid) in a group(5) file. */
export async function lookupGroupId(group: string, groupFile = '/etc/group'): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = await fsp.readFile(groupFile, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${groupFile} to look up group ${JSON.stringify(group)}: ${errMessage(err)}`);
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === group && fields.length >= 3 && /^\d+$/.test(fields[2]!)) return Number(fields[2]);
  }
  throw new Error(`group ${JSON.stringify(group)} not found in ${groupFile} (socketGroup must name an existing group)`);
}

type Probe = 'live' | 'stale' | 'gone';

/** Is something answering on this socket? */
function probeSocket(path: string, timeoutMs = 1000): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ path });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve('live'); // connected-but-silent cannot happen for AF_UNIX; a hang means someone holds it
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve('live');
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      sock.destroy();
      const code = errnoCode(err);
      if (code === 'ECONNREFUSED') resolve('stale');
      else if (code === 'ENOENT') resolve('gone');
      else if (code === 'EAGAIN') resolve('live'); // backlog full: someone listens
      else if (code === 'EACCES' || code === 'EPERM') {
        reject(
          new ControlSocketPathError(
            `a socket already exists at ${path} and this user may not connect to it to check whether another ` +
              `smoothd uses it; stop that daemon, or remove the file if it is stale`,
            path,
          ),
        );
      } else reject(new ControlSocketPathError(`cannot check the existing socket ${path}: ${errMessage(err)}`, path));
    });
  });
}

function describeFileType(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFile()) return 'a regular file';
  if (st.isFIFO()) return 'a FIFO';
  return 'not a socket';
}

/**
 * The folder must belong to this user or root, and must not be writable by
 * others unless sticky (like /tmp): otherwise another user could swap the
 * socket for their own (think of a pre-created /tmp/smoothd-1000).
 */
async function checkFolderSafety(dir: string, path: string): Promise<void> {
  if (typeof process.geteuid !== 'function') return;
  const uid = process.geteuid();
  const st = await fsp.lstat(dir); // lstat: a symlink planted in a shared folder must not be followed
  if (st.isSymbolicLink()) {
    throw new ControlSocketPathError(
      `the socket folder ${dir} is a symbolic link; refusing to follow it for the control socket — ` +
        `name the real folder in --socket / $SMOOTHD_SOCKET, or remove the link`,
      path,
    );
  }
  if (!st.isDirectory()) throw new ControlSocketPathError(`${dir} is not a folder`, path);
  if (st.uid !== uid && st.uid !== 0) {
    throw new ControlSocketPathError(
      `the socket folder ${dir} belongs to uid ${st.uid}, not to this user (uid ${uid}) or root; ` +
        `refusing to put the control socket there — remove it or choose another --socket`,
      path,
    );
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new ControlSocketPathError(
      `the socket folder ${dir} is writable by other users (mode 0${(st.mode & 0o7777).toString(8)}); ` +
        `refusing to put the control socket there — chmod go-w it or choose another --socket`,
      path,
    );
  }
}

/** Create the parent folder (0750, group) if missing; clear a stale socket; refuse anything else. */
async function preparePath(path: string, gid: number | null, logger: Logger, privateFolder: boolean): Promise<void> {
  const dir = dirname(path);
  if (privateFolder) {
    const problem = ensurePrivateSocketFolder(dir, process.geteuid?.() ?? -1);
    if (problem !== null) throw new ControlSocketPathError(problem, path);
  } else {
    await prepareSharedFolder(dir, path, gid, logger);
  }
  let st: import('node:fs').Stats;
  try {
    st = await fsp.lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw new ControlSocketPathError(`cannot examine ${path}: ${errMessage(err)}`, path);
  }
  if (!st.isSocket()) {
    throw new ControlSocketPathError(
      `${path} exists and is ${describeFileType(st)}, not a socket; smoothd will not remove it — ` +
        `move it away or choose another socket path (--socket / $SMOOTHD_SOCKET)`,
      path,
    );
  }
  const probe = await probeSocket(path);
  if (probe === 'live') throw new ControlSocketInUseError(path);
  if (probe === 'stale') {
    logger.info({ path }, 'removing stale control socket (nothing answers on it)');
    await fsp.unlink(path).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') {
        throw new ControlSocketPathError(`cannot remove the stale socket ${path}: ${errMessage(err)}`, path);
      }
    });
  }
}

/** The parent folder of a path the operator named: created 0750 (with the socket group) when missing. */
async function prepareSharedFolder(dir: string, path: string, gid: number | null, logger: Logger): Promise<void> {
  const firstCreated = await fsp.mkdir(dir, { recursive: true, mode: 0o750 }).catch((err: unknown) => {
    throw new ControlSocketPathError(`cannot create the socket folder ${dir}: ${errMessage(err)}`, path);
  });
  if (firstCreated !== undefined) {
    // mkdir's mode is filtered by the umask; set it exactly on every folder we created.
    const created: string[] = [];
    for (let d = dir; ; d = dirname(d)) {
      created.push(d);
      if (d === firstCreated || d === dirname(d)) break;
    }
    for (const d of created) {
      await fsp.chmod(d, 0o750);
      if (gid !== null) await fsp.chown(d, -1, gid);
    }
    logger.debug({ dir, created }, 'created control socket folder');
  }
  await checkFolderSafety(dir, path);
}

async function listenOn(server: Server, path: string, backlog: number): Promise<void> {
  const failed = once(server, 'error');
  server.listen({ path, backlog });
  await Promise.race([once(server, 'listening'), failed.then(([err]) => Promise.reject(err))]);
  failed.catch(() => undefined);
}

/** Logged (info) the first time a connection's unread replies pass `readPauseBytes`. */
export const STALL_MESSAGE = 'control client does not read its replies; smoothd stopped reading its requests until it does (and drops it if it takes nothing for the idle timeout)';

class Connection {
  readonly id: number;
  readonly socket: Socket;
  readonly abort = new AbortController();
  private readonly splitter: LineSplitter;
  private inFlight = 0;
  /** Lines read while maxInFlightPerConnection requests were running, or replies were piling up. */
  private held: string[] = [];
  /** Waiting for 'drain' (the client stopped reading its replies). */
  private stalled = false;
  private stallLogged = false;
  private stallTimer: NodeJS.Timeout | null = null;
  private peerEnded = false;
  private closed = false;
  private idleTimer: NodeJS.Timeout | null = null;
  /** destroyAfterLinger() was armed (endSoon, an oversize line): once per connection. */
  private lingering = false;
  /** Writes of this task wait for its end (see send()). */
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };
  lastActivity = Date.now();

  constructor(
    id: number,
    socket: Socket,
    private readonly host: ServerImpl,
  ) {
    this.id = id;
    this.socket = socket;
    this.splitter = new LineSplitter({
      maxLineBytes: host.maxLineBytes,
      onLine: (line) => this.onLine(line),
      onOversize: (_seen, limit) => this.onOversize(limit),
    });
    socket.on('data', (chunk: Buffer) => this.splitter.push(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err) => host.logger.debug({ conn: id, err }, 'control connection error'));
    socket.on('close', () => this.onClose());
    socket.on('drain', () => this.onDrain());
    this.armIdle();
  }

  get idle(): boolean {
    return this.inFlight === 0 && this.held.length === 0 && !this.closed;
  }

  /** Write one reply or notification; drop it if the connection is gone. */
  send(message: unknown): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    const text = this.host.serialize(message);
    // What one task sends (a worker ready, the next one stopping, another started: three
    // notifications) leaves in one write once that task is done, not in one syscall each; each
    // message is still its own line, in order. end() flushes what is corked.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      queueMicrotask(this.uncork);
    }
    this.socket.write(text);
    if (this.socket.writableLength > this.host.maxWriteBufferBytes) {
      this.host.logger.warn(
        { conn: this.id, queued: this.socket.writableLength },
        'control client does not read its replies; closing the connection',
      );
      this.destroy();
    }
  }

  notify(method: string, params: unknown): void {
    this.send({ jsonrpc: '2.0', method, params });
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Close gracefully: FIN now, and make sure the fd goes even if the peer never closes its side. */
  endSoon(): void {
    if (this.closed) return;
    this.socket.end();
    this.destroyLater();
  }

  private destroyLater(): void {
    if (this.lingering || this.closed) return;
    this.lingering = true;
    destroyAfterLinger(this.socket);
  }

  /** Too many replies wait for the client to read them. */
  private get writeBlocked(): boolean {
    return this.socket.writableLength > this.host.readPauseBytes;
  }

  private onLine(line: string): void {
    this.lastActivity = Date.now();
    this.disarmIdle();
    if (this.held.length > 0 || this.inFlight >= this.host.maxInFlightPerConnection || this.writeBlocked) {
      // At a limit: hold the line (at most what one read delivered) and stop reading.
      this.held.push(line);
      this.socket.pause();
      if (this.writeBlocked) this.stall();
      return;
    }
    this.dispatch(line);
  }

  /** Replies pile up: stop reading until the client takes them, and drop it if it never does. */
  private stall(): void {
    if (this.stalled || this.closed) return;
    this.stalled = true;
    if (!this.stallLogged) {
      // Once per connection: a client that keeps falling behind would otherwise log on every stall.
      this.stallLogged = true;
      this.host.logger.info({ conn: this.id, queued: this.socket.writableLength }, STALL_MESSAGE);
    }
    const ms = this.host.idleTimeoutMs;
    if (ms > 0) {
      this.stallTimer = setTimeout(() => {
        this.stallTimer = null;
        this.host.logger.warn(
          { conn: this.id, queued: this.socket.writableLength, ms },
          'control client took none of its replies for the idle timeout; closing the connection',
        );
        this.destroy();
      }, ms);
      this.stallTimer.unref();
    }
  }

  private onDrain(): void {
    if (!this.stalled) return;
    this.stalled = false;
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.pump();
  }

  /** Run held lines while the limits allow; resume reading once none is held. */
  private pump(): void {
    if (this.closed) return;
    while (this.held.length > 0 && this.inFlight < this.host.maxInFlightPerConnection) {
      if (this.writeBlocked) {
        this.stall();
        return;
      }
      this.dispatch(this.held.shift()!);
    }
    if (this.held.length > 0 || this.inFlight >= this.host.maxInFlightPerConnection) return;
    if (this.writeBlocked) {
      this.stall();
      return;
    }
    if (!this.splitter.refused) this.socket.resume();
    if (this.inFlight === 0) {
      if (this.peerEnded) this.endSoon();
      else this.armIdle();
    }
  }

  private dispatch(line: string): void {
    this.inFlight++;
    if (this.inFlight >= this.host.maxInFlightPerConnection) this.socket.pause();
    this.host
      .handleLine(line, this)
      .then(
        (reply) => {
          if (reply !== null) this.send(reply);
        },
        (err: unknown) => {
          // handleLine catches everything itself; this is a last resort.
          this.host.logger.error({ conn: this.id, err }, 'control request handling failed');
        },
      )
      .finally(() => {
        this.inFlight--;
        this.lastActivity = Date.now();
        this.pump();
      });
  }

  private onOversize(limit: number): void {
    this.host.logger.warn({ conn: this.id, limit }, 'control request line too large; closing the connection');
    this.disarmIdle();
    if (this.closed || !this.socket.writable) {
      this.socket.destroy();
      return;
    }
    const reply = errorReply(null, PROTOCOL_ERRORS.INVALID_REQUEST, `request too large (limit ${limit} bytes)`);
    // Send the error and FIN, then a lingering close (like nginx's): for up to
    // 1 s or LINGER_MAX_BYTES, read and DISCARD what the client still sends,
    // so a client still writing its line reads the error instead of failing
    // on a broken pipe first. Nothing is kept: the splitter has stopped.
    let discarded = 0;
    this.socket.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > LINGER_MAX_BYTES) this.socket.destroy();
    });
    this.socket.resume();
    this.socket.end(encodeLine(reply));
    this.destroyLater();
  }

  private onEnd(): void {
    this.peerEnded = true;
    // The peer will send nothing more. A full close and a half-close look the
    // same here (both are EOF), so treat both as a disconnect for handlers:
    // they stop streaming progress; an answer is still written if the
    // connection can carry it (half-close: `nc -N`, socat).
    this.abort.abort(new Error('control client closed its side of the connection'));
    const last = this.splitter.end();
    if (last !== null) this.onLine(last);
    else if (this.inFlight === 0 && this.held.length === 0) this.endSoon();
  }

  private onClose(): void {
    this.closed = true;
    this.disarmIdle();
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.splitter.stop();
    this.held = [];
    this.abort.abort(new Error('control connection closed'));
    this.host.forget(this);
  }

  private armIdle(): void {
    this.disarmIdle();
    const ms = this.host.idleTimeoutMs;
    if (ms <= 0 || this.closed) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.inFlight > 0) return; // never close a connection with a request pending
      this.host.logger.debug({ conn: this.id, idleMs: ms }, 'closing idle control connection');
      this.endSoon();
    }, ms);
    this.idleTimer.unref();
  }

  private disarmIdle(): void {
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
  }
}

class ServerImpl implements ControlServer {
  readonly path: string;
  readonly logger: Logger;
  readonly maxLineBytes: number;
  readonly idleTimeoutMs: number;
  readonly maxInFlightPerConnection: number;
  readonly maxWriteBufferBytes: number;
  readonly readPauseBytes: number;
  private readonly maxConnections: number;
  private readonly maxDepth: number;
  private readonly maxBatch: number;
  private readonly rpc: JSONRPCServer<CallContext>;
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 1;
  private server: Server | null = null;
  private socketIdentity: { dev: number; ino: number } | null = null;
  private closing: Promise<void> | null = null;

  constructor(opts: ControlServerOptions) {
    this.path = opts.path;
    this.logger = opts.logger.child({ component: 'control' });
    this.maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.maxConnections = opts.maxConnections ?? DEFAULTS.maxConnections;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs;
    this.maxDepth = opts.maxDepth ?? DEFAULTS.maxDepth;
    this.maxBatch = opts.maxBatch ?? DEFAULTS.maxBatch;
    this.maxInFlightPerConnection = opts.maxInFlightPerConnection ?? DEFAULTS.maxInFlightPerConnection;
    this.maxWriteBufferBytes = opts.maxWriteBufferBytes ?? DEFAULTS.maxWriteBufferBytes;
    this.readPauseBytes = opts.readPauseBytes ?? DEFAULTS.readPauseBytes;
    this.rpc = this.buildDispatcher(opts.handlers, opts.extraMethods ?? []);
  }

  /** Connections the kernel queues before we accept them (capped by net.core.somaxconn). */
  private get backlog(): number {
    return Math.max(511, this.maxConnections);
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  get limits(): ControlLimits {
    return {
      maxLineBytes: this.maxLineBytes,
      maxDepth: this.maxDepth,
      maxBatch: this.maxBatch,
      maxConnections: this.maxConnections,
      maxInFlightPerConnection: this.maxInFlightPerConnection,
      readPauseBytes: this.readPauseBytes,
      maxWriteBufferBytes: this.maxWriteBufferBytes,
      idleTimeoutMs: this.idleTimeoutMs,
    };
  }

  private buildDispatcher(handlers: ControlHandlers, extra: readonly ExtraMethod[]): JSONRPCServer<CallContext> {
    const rpc = new JSONRPCServer<CallContext>({
      // The library reports every thrown error here (its default is console.warn).
      errorListener: (message, data) => {
        if (data instanceof RpcError || data instanceof JSONRPCErrorException) {
          this.logger.debug({ code: data.code, msg: data.message }, 'control method answered with an error');
        } else {
          this.logger.error({ err: data }, message);
        }
      },
    });
    rpc.mapErrorToJSONRPCErrorResponse = (id, error: unknown) => {
      if (error instanceof RpcError || error instanceof JSONRPCErrorException) {
        return errorReply(id, error.code, error.message, error.data);
      }
      return errorReply(id, ERROR_CODES.INTERNAL, `internal error: ${errMessage(error)} (details in the smoothd log)`);
    };
    const register = (spec: MethodSpec, handler: (params: Record<string, unknown>, ctx: CallContext) => unknown) => {
      rpc.addMethod(spec.name, async (raw: unknown, ctx: CallContext) => {
        const params = validateParams(spec, raw);
        const result = await handler(params, ctx);
        return result === undefined ? null : result; // a success reply must carry `result`
      });
    };
    const product: Record<string, (params: Record<string, unknown>, ctx: CallContext) => unknown> = {
      reload: (p, ctx) => handlers.reload(p as ReloadParams, ctx),
      restart: (p, ctx) => handlers.restart(p as unknown as RestartParams, ctx),
      rollback: (p, ctx) => handlers.rollback(p as RollbackParams, ctx),
      status: (p, ctx) => handlers.status(p as StatusParams, ctx),
      stop: (p, ctx) => handlers.stop(p as StopParams, ctx),
      metrics: (p, ctx) => (handlers.metrics ? handlers.metrics(p as Record<string, never>, ctx) : { contentType: 'text/plain; version=0.0.4', text: '' }),
      logs: (p, ctx) => {
        if (!handlers.logs) throw new RpcError(PROTOCOL_ERRORS.METHOD_NOT_FOUND, 'Method not found: logs');
        return handlers.logs(p as { group?: string; lines?: number; follow?: boolean }, ctx);
      },
      subscribe: (p, ctx) => {
        if (!handlers.subscribe) throw new RpcError(PROTOCOL_ERRORS.METHOD_NOT_FOUND, 'Method not found: subscribe');
        return handlers.subscribe(p as { events?: string[] }, ctx);
      },
    };
    for (const spec of METHODS) register(spec, product[spec.name]!);
    for (const m of extra) {
      if (rpc.hasMethod(m.spec.name)) throw new Error(`method ${m.spec.name} is registered twice`);
      register(m.spec, m.handler);
    }
    return rpc;
  }

  /** Serialize a reply, replacing any part that cannot be serialized with an internal error. */
  serialize(message: unknown): string {
    try {
      return encodeLine(message);
    } catch (err) {
      this.logger.error({ err }, 'control reply is not JSON-serializable');
      const internal = (id: JSONRPCID) =>
        errorReply(id, ERROR_CODES.INTERNAL, 'internal error: the reply could not be serialized (details in the smoothd log)');
      if (Array.isArray(message)) {
        const parts = message.map((m: unknown) => {
          try {
            return JSON.stringify(m);
          } catch {
            const id = (m as { id?: unknown } | null)?.id;
            return JSON.stringify(internal(isValidId(id) ? id : null));
          }
        });
        return `[${parts.join(',')}]\n`;
      }
      const id = (message as { id?: unknown } | null)?.id;
      if ('method' in (message as object) && id === undefined) return ''; // an unserializable notification: drop it
      return encodeLine(internal(isValidId(id) ? id : null));
    }
  }

  /** One line in, at most one reply (object or array) out. Never throws. */
  async handleLine(line: string, conn: Connection): Promise<Reply | null> {
    if (jsonDepthExceeds(line, this.maxDepth)) {
      return errorReply(null, PROTOCOL_ERRORS.INVALID_REQUEST, `request nests deeper than ${this.maxDepth} levels`);
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return errorReply(null, PROTOCOL_ERRORS.PARSE_ERROR, 'Parse error');
    }
    if (!Array.isArray(value)) return this.handleOne(value, conn);
    if (value.length === 0) return errorReply(null, PROTOCOL_ERRORS.INVALID_REQUEST, 'Invalid Request: empty batch');
    if (value.length > this.maxBatch) {
      return errorReply(
        null,
        PROTOCOL_ERRORS.INVALID_REQUEST,
        `Invalid Request: batch of ${value.length} requests is over the limit of ${this.maxBatch}`,
      );
    }
    const replies = await Promise.all(value.map((item: unknown) => this.handleOne(item, conn)));
    const present = replies.filter((r): r is JSONRPCResponse => r !== null);
    return present.length > 0 ? present : null; // an array even for one reply; nothing for all-notification batches
  }

  private async handleOne(item: unknown, conn: Connection): Promise<JSONRPCResponse | null> {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      return errorReply(null, PROTOCOL_ERRORS.INVALID_REQUEST, 'Invalid Request: not a request object');
    }
    const req = item as Record<string, unknown>;
    const hasId = Object.prototype.hasOwnProperty.call(req, 'id');
    if (hasId && !isValidId(req.id)) {
      return errorReply(null, PROTOCOL_ERRORS.INVALID_REQUEST, 'Invalid Request: id must be a string, a number or null');
    }
    const id = hasId ? (req.id as JSONRPCID) : null;
    if (req.jsonrpc !== '2.0') {
      return errorReply(id, PROTOCOL_ERRORS.INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"');
    }
    if (typeof req.method !== 'string') {
      return errorReply(id, PROTOCOL_ERRORS.INVALID_REQUEST, 'Invalid Request: "method" must be a string');
    }
    if ('result' in req || 'error' in req) {
      return errorReply(id, PROTOCOL_ERRORS.INVALID_REQUEST, 'Invalid Request: a request has no "result" or "error"');
    }
    const request: JSONRPCRequest = { jsonrpc: '2.0', method: req.method };
    if ('params' in req) request.params = req.params;
    if (hasId) request.id = id;
    const ctx: CallContext = {
      notify: (method, params) => conn.notify(method, params),
      signal: conn.abort.signal,
    };
    try {
      return await this.rpc.receive(request, ctx);
    } catch (err) {
      this.logger.error({ err, method: req.method }, 'control dispatch failed');
      return hasId ? errorReply(id, ERROR_CODES.INTERNAL, `internal error: ${errMessage(err)}`) : null;
    }
  }

  private onConnection(socket: Socket): void {
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.maxConnections) {
      let oldest: Connection | null = null;
      for (const c of this.connections) {
        if (c.idle && (oldest === null || c.lastActivity < oldest.lastActivity)) oldest = c;
      }
      if (oldest !== null) {
        this.logger.info({ conn: oldest.id, limit: this.maxConnections }, 'too many control connections; closing the oldest idle one');
        this.connections.delete(oldest);
        oldest.destroy();
      } else {
        this.logger.warn({ limit: this.maxConnections }, 'too many control connections, all busy; refusing a new one');
        socket.on('error', () => undefined);
        const reply = errorReply(
          null,
          ERROR_CODES.TOO_MANY_CONNECTIONS,
          `too many control connections (limit ${this.maxConnections}), all busy; try again`,
        );
        socket.end(encodeLine(reply), () => socket.destroy());
        destroyAfterLinger(socket);
        return;
      }
    }
    const conn = new Connection(this.nextConnectionId++, socket, this);
    this.connections.add(conn);
  }

  forget(conn: Connection): void {
    this.connections.delete(conn);
  }

  async start(mode: number, group: string | null | undefined, groupFile: string | undefined, privateFolder: boolean): Promise<void> {
    const path = checkSocketPath(this.path);
    const gid = group === null || group === undefined || group === '' ? null : await lookupGroupId(group, groupFile);
    await preparePath(path, gid, this.logger, privateFolder);
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false });
    server.on('connection', (socket) => this.onConnection(socket));
    const dir = dirname(path);
    // mkdtemp adds 6 characters: ".s" + 6 + "/s" beside the target.
    const tmpLength = Buffer.byteLength(join(dir, '.sXXXXXX', 's'));
    try {
      if (tmpLength <= MAX_SOCKET_PATH_BYTES) {
        const tmpDir = await fsp.mkdtemp(join(dir, '.s')); // mode 0700: nobody else can reach what is inside
        const tmpPath = join(tmpDir, 's');
        try {
          await listenOn(server, tmpPath, this.backlog);
          await fsp.chmod(tmpPath, mode);
          if (gid !== null) await fsp.chown(tmpPath, -1, gid);
          await fsp.rename(tmpPath, path);
        } finally {
          await fsp.rm(tmpDir, { recursive: true, force: true });
        }
      } else {
        const failed = once(server, 'error');
        server.listen({ path, backlog: this.backlog }); // binds synchronously ...
        try {
          chmodSync(path, mode); // ... so this runs before any other JS, microseconds later
        } catch {
          // listen failed; the error event says why
        }
        await Promise.race([once(server, 'listening'), failed.then(([err]) => Promise.reject(err))]);
        failed.catch(() => undefined);
        await fsp.chmod(path, mode);
        if (gid !== null) await fsp.chown(path, -1, gid);
      }
      const st = await fsp.lstat(path);
      this.socketIdentity = { dev: st.dev, ino: st.ino };
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (err instanceof ControlSocketPathError || err instanceof ControlSocketInUseError) throw err;
      const code = errnoCode(err);
      const hint =
        code === 'EPERM' && gid !== null
          ? ` (this user cannot give the socket to group ${JSON.stringify(group)}: it must own the file and be a member of that group, or be root)`
          : code === 'EACCES'
            ? ` (no write permission on ${dir})`
            : '';
      throw new ControlSocketPathError(`cannot create the control socket ${path}: ${errMessage(err)}${hint}`, path);
    }
    server.on('error', (err) => this.logger.error({ err, path }, 'control socket error'));
    this.server = server;
    this.logger.info({ path, mode: '0' + mode.toString(8), group: group ?? null }, 'control socket listening');
  }

  close(): Promise<void> {
    if (this.closing === null) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const c of this.connections) c.destroy();
    this.connections.clear();
    await closed;
    // Remove the socket file only if it is still the one we created (a new daemon may have replaced it).
    try {
      const st = await fsp.lstat(this.path);
      if (this.socketIdentity !== null && st.dev === this.socketIdentity.dev && st.ino === this.socketIdentity.ino) {
        await fsp.unlink(this.path);
      }
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') this.logger.warn({ err, path: this.path }, 'cannot remove the control socket');
    }
    this.logger.debug({ path: this.path }, 'control socket closed');
  }
}

/** Create the control socket and serve the methods of the registry on it. */
export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  if (basename(opts.path) === '') throw new ControlSocketPathError(`socket path ${opts.path} names a folder`, opts.path);
  const impl = new ServerImpl(opts);
  await impl.start(opts.mode, opts.group, opts.groupFile, opts.privateFolder ?? false);
  return impl;
}
