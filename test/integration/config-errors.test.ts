/**
 * The real smoothd on configs the yaml library rejects late: exit 78 with a
 * message on stderr (what systemd's RestartPreventExitStatus=78 stops on),
 * never a stack trace and never exit 1.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SMOOTHD, tempDir } from './harness.js';

const dir = tempDir('smoothd-config-errors-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function smoothd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SMOOTHD, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr });
    });
  });
}

const CASES: Record<string, string | Buffer> = {
  'merge of a number': 'groups:\n  web:\n    <<: 5\n    command: [sleep, "10"]\n',
  'a merge of itself': 'groups:\n  web: &web\n    <<: *web\n    command: [sleep, "10"]\n',
  'a binary file': Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0xff, 0xfe]),
  'a list': '- sleep\n- "10"\n',
};

describe('smoothd on a config the YAML library rejects late', () => {
  for (const [name, text] of Object.entries(CASES)) {
    it(`--check and start exit 78 with a message: ${name}`, async () => {
      const file = path.join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
      fs.writeFileSync(file, text);
      for (const args of [['--check'], ['--socket', path.join(dir, 'ctl.sock')]]) {
        const r = await smoothd(['--config', file, ...args]);
        expect(r.code, r.stderr).toBe(78);
        expect(r.stderr).toMatch(new RegExp(`^smoothd: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 1 problem:\n  \\(document\\): `));
        expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      }
    });
  }
});
