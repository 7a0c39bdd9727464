/**
 * Listen addresses: parsing the forms of DESIGN §3 into a normalised
 * `ListenAddress`, and deciding when two addresses would fight over a port.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { ListenAddress } from './types.js';

/** The kernel silently truncates longer `sun_path`s (DESIGN §9). */
export const MAX_UNIX_PATH_BYTES = 107;

/** LISTEN_FDNAMES entries are `:`-separated, so names cannot contain `:`. */
export const FD_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,255}$/;

export const LISTEN_FORMS =
  'expected "HOST:PORT", "[IPv6]:PORT", ":PORT" (all IPv4 interfaces), "unix:/path" or "systemd:NAME"';

const IPV4_ANY = '0.0.0.0';
const IPV6_ANY = '::';

/**
 * Parses one listen address as written. Relative unix paths are resolved
 * against `baseDir` (the config file's folder). Returns the address, or a
 * string saying what is wrong and what is allowed.
 *
 * `:PORT` means all IPv4 interfaces (0.0.0.0), not dual-stack `[::]`, so the
 * address family never depends on the host's `bindv6only` setting; write
 * `[::]:PORT` for IPv6 (dual-stack on Linux by default).
 */
export function parseListenAddress(text: string, baseDir: string): ListenAddress | string {
  const trimmed = text.trim();
  if (trimmed.startsWith('unix:')) return parseUnix(trimmed.slice('unix:'.length), baseDir);
  if (trimmed.startsWith('systemd:')) return parseSystemd(trimmed.slice('systemd:'.length));
  if (trimmed.includes('://')) {
    return `write the address without a scheme, e.g. "127.0.0.1:8080"; ${LISTEN_FORMS}`;
  }
  if (trimmed.startsWith('[')) return parseBracketed(trimmed);
  return parseHostPort(trimmed);
}

function parseUnix(rawPath: string, baseDir: string): ListenAddress | string {
  if (rawPath === '') return `expected a path after "unix:", e.g. "unix:/run/app.sock"`;
  if (rawPath.startsWith('@')) {
    return 'abstract unix sockets ("unix:@name") are not supported; use a path such as "unix:/run/app.sock"';
  }
  if (rawPath.includes('\0')) return 'a unix socket path cannot contain a NUL byte';
  const path = resolve(baseDir, rawPath);
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_UNIX_PATH_BYTES) {
    return (
      `the unix socket path ${path} is ${bytes} bytes; the kernel allows at most ` +
      `${MAX_UNIX_PATH_BYTES} and would silently cut it short. Choose a shorter path, e.g. under /run`
    );
  }
  return { kind: 'unix', path, key: `unix:${path}` };
}

function parseSystemd(fdName: string): ListenAddress | string {
  if (!FD_NAME_PATTERN.test(fdName)) {
    return (
      'expected "systemd:NAME" where NAME is the FileDescriptorName= of a socket passed by systemd ' +
      '(letters, digits, "_", "." and "-", 1 to 255 characters)'
    );
  }
  return { kind: 'systemd', fdName, key: `systemd:${fdName}` };
}

function parseBracketed(text: string): ListenAddress | string {
  const match = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (!match) return `expected "[IPv6]:PORT", e.g. "[::1]:8080"`;
  const [, host = '', port] = match;
  if (port === undefined) return `add the port: "[${host}]:PORT", e.g. "[${host}]:8080"`;
  if (isIP(host) !== 6) {
    return `${JSON.stringify(host)} is not an IPv6 address; brackets are for IPv6, e.g. "[::1]:8080" or "[::]:8080"`;
  }
  return tcpAddress(canonicalIPv6(host), 6, port);
}

function parseHostPort(text: string): ListenAddress | string {
  const colon = text.lastIndexOf(':');
  if (colon < 0) {
    if (/^\d+$/.test(text)) {
      return `a bare port is ambiguous; write ":${text}" for all IPv4 interfaces or "127.0.0.1:${text}" for this host only`;
    }
    return `missing ":PORT"; ${LISTEN_FORMS}`;
  }
  const host = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (host.includes(':')) {
    return `write IPv6 addresses in brackets, e.g. "[${host}]:${port}"`;
  }
  if (host === '' || host === '*') return tcpAddress(IPV4_ANY, 4, port);
  if (host === 'localhost') return tcpAddress('127.0.0.1', 4, port);
  if (isIP(host) === 4) return tcpAddress(host, 4, port);
  return (
    `${JSON.stringify(host)} is not an IP address; smoothd binds addresses, not host names ` +
    `(only "localhost" is understood, as 127.0.0.1). Write e.g. "127.0.0.1:${port}" or "[::1]:${port}"`
  );
}

function tcpAddress(host: string, family: 4 | 6, portText: string): ListenAddress | string {
  const port = parsePort(portText);
  if (port === null) {
    return `${JSON.stringify(portText)} is not a port; expected a port from 0 to 65535 (0 lets the kernel pick one)`;
  }
  const shown = family === 6 ? `[${host}]` : host;
  return { kind: 'tcp', host, port, family, key: `tcp:${shown}:${port}` };
}

function parsePort(text: string): number | null {
  if (!/^\d{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

/**
 * RFC 5952 text for an IPv6 address (lower case, longest zero run as `::`),
 * so that `0:0::1` and `::1` get the same key. Keeps a `%zone` suffix.
 */
export function canonicalIPv6(text: string): string {
  const [address = '', zone] = text.split('%');
  const groups = ipv6Groups(address);
  const mapped = mappedIPv4(groups);
  const body = mapped === null ? compressGroups(groups) : `::ffff:${mapped}`;
  return zone === undefined ? body : `${body}%${zone}`;
}

/** The eight 16-bit groups of a valid IPv6 address (validity is checked by isIP first). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  if (rest === undefined) return left;
  const right = parse(rest);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function mappedIPv4(groups: number[]): string | null {
  const isMapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (!isMapped) return null;
  const [hi = 0, lo = 0] = groups.slice(6);
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

function compressGroups(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1; // RFC 5952: a single zero group is not shortened
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLength).join(':');
  return `${left}::${right}`;
}

/** True for a TCP address whose port is chosen by the kernel (never overlaps). */
export function isEphemeral(address: ListenAddress): boolean {
  return address.kind === 'tcp' && address.port === 0;
}

/**
 * Whether two listen addresses would compete for the same socket: the same
 * unix path, the same systemd name, or TCP addresses on the same (non-zero)
 * port where one binding covers the other. `0.0.0.0` covers every IPv4
 * address, `::` covers every IPv6 address and, being dual-stack on Linux by
 * default, every IPv4 address too. An IPv4-mapped IPv6 address
 * (`::ffff:a.b.c.d`) counts as that IPv4 address.
 *
 * The runtime reuses this at reload to refuse an address that overlaps one it
 * already holds ("needs a restart").
 */
export function addressesOverlap(a: ListenAddress, b: ListenAddress): boolean {
  if (a.kind === 'unix' && b.kind === 'unix') return a.path === b.path;
  if (a.kind === 'systemd' && b.kind === 'systemd') return a.fdName === b.fdName;
  if (a.kind === 'tcp' && b.kind === 'tcp') return tcpOverlap(a, b);
  return false;
}

type TcpAddress = Extract<ListenAddress, { kind: 'tcp' }>;

function tcpOverlap(a: TcpAddress, b: TcpAddress): boolean {
  if (a.port === 0 || b.port === 0 || a.port !== b.port) return false;
  const x = effectiveHost(a);
  const y = effectiveHost(b);
  if (x.family === y.family) return x.host === y.host || isAny(x) || isAny(y);
  // Different families: only a dual-stack `::` reaches into IPv4.
  return (x.family === 6 && x.host === IPV6_ANY) || (y.family === 6 && y.host === IPV6_ANY);
}

function effectiveHost(address: TcpAddress): { host: string; family: 4 | 6 } {
  if (address.family === 6 && address.host.startsWith('::ffff:') && address.host.includes('.')) {
    return { host: address.host.slice('::ffff:'.length), family: 4 };
  }
  return { host: address.host, family: address.family };
}

function isAny(address: { host: string; family: 4 | 6 }): boolean {
  return address.host === (address.family === 4 ? IPV4_ANY : IPV6_ANY);
}
