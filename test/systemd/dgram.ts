/**
 * A real AF_UNIX datagram socket bound by the test (with unix-dgram), playing
 * systemd's notify socket: collects every datagram it receives.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadUnixDgram, type UnixDgramSocket } from '../../src/runtime/notify-socket.js';

export interface Receiver {
  path: string;
  messages: string[];
  /** Resolves with the first message (from index `from`) that matches. */
  next(match: (m: string) => boolean, timeoutMs?: number, from?: number): Promise<string>;
  close(): void;
}

export function bindReceiver(dir?: string): Receiver {
  const mod = loadUnixDgram();
  if (!mod) throw new Error('unix-dgram is not installed (npm ci installs it: it is an optionalDependency)');
  const folder = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'smoothd-notify-test-'));
  const file = path.join(folder, 'notify.sock');
  const messages: string[] = [];
  const waiters = new Set<() => void>();
  const sock: UnixDgramSocket = mod.createSocket('unix_dgram');
  sock.on('error', (err: Error) => {
    throw err;
  });
  sock.on('message', (buf: Buffer) => {
    messages.push(buf.toString('utf8'));
    for (const w of [...waiters]) w();
  });
  sock.bind(file);
  return {
    path: file,
    messages,
    next(match, timeoutMs = 5_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = messages.slice(from).find(match);
          if (found === undefined) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching notify message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    close() {
      try {
        sock.close();
      } catch {
        // closed
      }
      if (!dir) fs.rmSync(folder, { recursive: true, force: true });
    },
  };
}
