/**
 * Worker STATUS text with real processes: a worker cannot drive the
 * operator's terminal through `smoothctl status`, and a worker that floods
 * STATUS still ends up showing its last text.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, type Daemon, FIXTURES, smoothctl, startDaemon, waitFor } from './harness.js';


afterEach(cleanup);

function config(env: Record<string, string>): string {
  return [
    'groups:',
    '  web:',
    `    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(path.join(FIXTURES, 'status-flood.mjs'))}]`,
    `    env: ${JSON.stringify(env)}`,
    '    ready: ipc',
    '',
  ].join('\n');
}

async function start(env: Record<string, string>): Promise<Daemon> {
  const d = await startDaemon(config(env));
  return d;
}

describe('worker STATUS text', () => {
  it('smoothctl status prints control characters from a worker escaped: no raw ESC, no injected line', async () => {
    const evil = 'ok\x1b[2J\x1b]0;owned\x07\nFAKE ROW\x9b31m\x7f';
    const d = await start({ STATUS_TEXT: evil });
    await waitFor('the status text to arrive', async () => (await d.status()).groups[0].workers[0].statusText === evil);

    const r = await smoothctl(d.socket, ['status']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    expect(r.stdout).toContain('ok\\x1b[2J\\x1b]0;owned\\x07\\nFAKE ROW\\x9b31m\\x7f');
    // The header, the table heading and one worker row: the newline did not add a row.
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(3);

    const j = await smoothctl(d.socket, ['status', '--json']);
    expect(j.code).toBe(0);
    expect(j.stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
    expect(JSON.parse(j.stdout).groups[0].workers[0].statusText).toBe(evil);
  });

  it('a worker flooding STATUS (thousands a second) ends up showing its last text', async () => {
    const d = await start({ FLOOD_PER_MS: '20', FLOOD_COUNT: '20000' });
    const s = await waitFor('the final status', async () => {
      const st = await d.status();
      return st.groups[0].workers[0].statusText === 'final 20000' ? st : null;
    }, 20_000);
    expect(s.daemon.state).toBe('running');
  });
});
