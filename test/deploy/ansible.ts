/**
 * Runs the real ansible-playbook against inventories of smoothd instances on
 * this machine, in a temp folder with its own Ansible config and temp dirs
 * (so ~/.ansible and /etc/ansible play no part, also as root).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, SMOOTHCTL, tempDir, track } from '../integration/harness.js';

export const PLAYBOOK = path.join(ROOT, 'deploy/ansible/rolling-deploy.yml');

/** ansible-playbook's path on PATH, or null (developers without ansible-core). */
export function findAnsiblePlaybook(): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir || '.', 'ansible-playbook');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** The `smoothctl` host variable for this checkout: a command with an argument. */
export const SMOOTHCTL_COMMAND = `${process.execPath} ${SMOOTHCTL}`;

export interface InventoryHost {
  name: string;
  vars: Record<string, unknown>;
}

/** A YAML inventory (JSON is YAML) of local-connection hosts, in inventory order. */
export function writeInventory(dir: string, hosts: InventoryHost[], groupVars: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'inventory.yml');
  const inventory = {
    all: {
      vars: { ansible_connection: 'local', ansible_python_interpreter: '/usr/bin/python3', ...groupVars },
      hosts: Object.fromEntries(hosts.map((h) => [h.name, h.vars])),
    },
  };
  fs.writeFileSync(file, JSON.stringify(inventory, null, 2));
  return file;
}

export interface PlaybookRun {
  code: number | null;
  output: string;
  ms: number;
}

export async function runPlaybook(playbook: string, inventory: string, extraVars: Record<string, string>, timeoutMs = 120_000): Promise<PlaybookRun> {
  const bin = findAnsiblePlaybook();
  if (!bin) throw new Error('ansible-playbook not found on PATH');
  const home = tempDir('smoothd-ansible-');
  const cfg = path.join(home, 'ansible.cfg');
  fs.writeFileSync(cfg, '[defaults]\n');
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('ANSIBLE_')) delete env[k];
  Object.assign(env, {
    ANSIBLE_CONFIG: cfg,
    ANSIBLE_HOME: home,
    ANSIBLE_LOCAL_TEMP: path.join(home, 'local-tmp'),
    ANSIBLE_REMOTE_TEMP: path.join(home, 'remote-tmp'),
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_HOST_KEY_CHECKING: 'False',
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    ANSIBLE_PIPELINING: 'True',
    // Output up to the last line even when the run is killed.
    PYTHONUNBUFFERED: '1',
  });
  const args = ['-i', inventory, playbook, ...Object.entries(extraVars).flatMap(([k, v]) => ['-e', `${k}=${v}`])];
  const started = Date.now();
  const proc = spawn(bin, args, { cwd: home, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  track(proc.pid);
  let output = '';
  proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const timer = setTimeout(() => {
    output += `\n[test] ansible-playbook still running after ${timeoutMs} ms: killed\n`;
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }, timeoutMs);
  const code = await new Promise<number | null>((resolve) => proc.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  fs.rmSync(home, { recursive: true, force: true });
  return { code, output, ms: Date.now() - started };
}
