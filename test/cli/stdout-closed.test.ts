// smoothctl whose reader went away (`smoothctl status | head -2`): the write
// fails with EPIPE, the rest of the output is dropped, and the command ends
// with its own exit code and no stack trace.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BIN } from './build.js';

function runWithClosedStdout(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Close the read end before smoothctl (still starting Node) writes anything.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

describe('smoothctl with a closed stdout', () => {
  it('ends with exit 0 and nothing on stderr when its reader is gone (--help)', async () => {
    const r = await runWithClosedStdout(['--help']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('keeps the exit code of the command itself (a usage error stays 64, with its message)', async () => {
    const r = await runWithClosedStdout(['--timeout', 'soon', 'status']);
    expect(r.stderr).not.toMatch(/EPIPE|node:events|at /);
    expect(r.stderr).toMatch(/smoothctl: .*timeout/i);
    expect(r.code).toBe(64);
  });
});
