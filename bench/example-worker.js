// A fresh examples/hello worker outside smoothd, for the bench tools that time
// one worker (warmup-first.mjs, cold-worker.mjs): PORT=0 (the kit's fallback
// address), smoothd's own variables removed from its environment so that it
// never mistakes itself for a supervised worker, and the port it printed.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const example = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'examples/hello');

/**
 * Starts `node [flags] server.js` in examples/hello with `env` over this
 * process's environment; resolves once it listens, with {child, port, exited}.
 */
export async function startExampleWorker({ node = process.execPath, flags = [], env = {} } = {}) {
  const childEnv = { ...process.env, PORT: '0', ...env };
  for (const k of Object.keys(childEnv)) if (/^(LISTEN_|SMOOTHD_|NOTIFY_SOCKET$)/.test(k)) delete childEnv[k];
  const child = spawn(node, [...flags, 'server.js'], { cwd: example, env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const port = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (c) => {
        out += c;
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`the worker exited (${code}) before it listened`)));
    });
    return { child, port, exited };
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  }
}
