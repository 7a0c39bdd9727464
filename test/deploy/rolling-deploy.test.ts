/**
 * deploy/ansible/rolling-deploy.yml run by the real ansible-playbook over three
 * smoothd instances on this machine (three inventory hosts with
 * ansible_connection: local, each with its own socket, port and app_root),
 * under HTTP load on every host while the play runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { boundPort, cleanup, get, startDaemon, startLoad, tempDir, type Daemon, type Load } from '../integration/harness.js';
import { config, group, release } from '../integration/releases.js';
import { PLAYBOOK, SMOOTHCTL_COMMAND, findAnsiblePlaybook, runPlaybook, writeInventory, type InventoryHost, type PlaybookRun } from './ansible.js';

const ANSIBLE = findAnsiblePlaybook();
if (!ANSIBLE) console.warn('test/deploy/rolling-deploy.test.ts skipped: ansible-playbook is not on PATH (apt-get install ansible-core)');

interface Host {
  name: string;
  dir: string;
  port: number;
  daemon: Daemon;
  load: Load;
  pidsBefore: number[];
}

const loads: Load[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await cleanup(); // loads, daemons, then every tracked pid
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A host whose app_root has releases v1 and v2 (`v2` files added to v2) and whose smoothd runs v1. */
async function host(name: string, v2: Record<string, string> = {}): Promise<Host> {
  const dir = tempDir('smoothd-fleet-');
  dirs.push(dir);
  release(dir, 'v2', v2);
  release(dir, 'v1');
  const daemon = await startDaemon(config(group(dir, { count: 2, listen: ['127.0.0.1:0'], readyTimeout: '5s', stopTimeout: '5s' })), { dir });
  const port = await boundPort(daemon);
  const load = startLoad(port, { concurrency: 2 });
  loads.push(load);
  return { name, dir, port, daemon, load, pidsBefore: await daemon.workerPids() };
}

function inventoryHost(h: { name: string; dir: string; socket: string }): InventoryHost {
  return { name: h.name, vars: { smoothd_socket: h.socket, app_root: h.dir, smoothctl: SMOOTHCTL_COMMAND } };
}

async function deploy(hosts: Host[], rel: string, extra: Record<string, string> = {}): Promise<PlaybookRun> {
  const dir = tempDir('smoothd-inventory-');
  dirs.push(dir);
  const inv = writeInventory(dir, hosts.map((h) => inventoryHost({ ...h, socket: h.daemon.socket })));
  // Every host is under load before the play starts.
  for (const h of hosts) await waitLoad(h.load);
  return runPlaybook(PLAYBOOK, inv, { release: rel, ...extra });
}

async function waitLoad(load: Load): Promise<void> {
  const from = load.ok + load.failed;
  while (load.ok + load.failed < from + 20) await new Promise((r) => setTimeout(r, 20));
}

const current = (h: Host): string => fs.readlinkSync(path.join(h.dir, 'current'));
const serves = async (h: Host): Promise<string> => (await get(h.port)).body.split(' worker ')[0]!;

describe.skipIf(!ANSIBLE)('rolling-deploy.yml with the real ansible-playbook', () => {
  it('rolls every host onto the release in one batch of -e smoothd_serial=3, with no failed request', async () => {
    const hosts = await Promise.all(['web1', 'web2', 'web3'].map((n) => host(n)));
    const run = await deploy(hosts, 'v2', { smoothd_serial: '3' });
    await Promise.all(loads.splice(0).map((l) => l.stop()));

    expect(run.code, run.output).toBe(0);
    for (const h of hosts) {
      expect(current(h)).toBe(path.join(h.dir, 'releases/v2'));
      expect(await serves(h)).toBe('release v2');
      const status = await h.daemon.status();
      expect(status.reload.state).toBe('succeeded');
      expect((await h.daemon.workerPids()).filter((pid) => h.pidsBefore.includes(pid))).toEqual([]);
      expect(h.load.failed, `${h.name}: ${JSON.stringify([...h.load.errors])}`).toBe(0);
      expect(h.load.ok).toBeGreaterThan(0);
      // The play prints each host's result line with the report's duration.
      expect(run.output).toMatch(new RegExp(`${h.name}: v2 is live, reload 1 succeeded in \\d+ ms`));
    }
    // smoothd_serial=3 from -e: one batch (one PLAY header) of three hosts.
    expect(run.output.match(/^PLAY \[Rolling deploy of v2 with smoothd\]/gm)).toHaveLength(1);
    console.log(`all-good play over 3 hosts: ${run.ms} ms; requests served ${hosts.map((h) => `${h.name}=${h.load.ok}`).join(' ')}, failed 0`);
  }, 150_000);

  it('stops at a host where the release is broken: it points current back, later hosts are never touched', async () => {
    const hosts = await Promise.all([host('web1'), host('web2', { 'crash.txt': 'v2 cannot start: DATABASE_URL is not set' }), host('web3')]);
    const [h1, h2, h3] = hosts as [Host, Host, Host];
    const run = await deploy(hosts, 'v2');
    await Promise.all(loads.splice(0).map((l) => l.stop()));

    expect(run.code, run.output).not.toBe(0);
    // web1 rolled.
    expect(current(h1)).toBe(path.join(h1.dir, 'releases/v2'));
    expect(await serves(h1)).toBe('release v2');
    // web2: the reload failed, smoothd kept v1 serving and current points back at v1.
    expect(current(h2)).toBe(path.join(h2.dir, 'releases/v1'));
    expect(await serves(h2)).toBe('release v1');
    expect((await h2.daemon.status()).reload.state).toBe('failed');
    expect(run.output).toContain(`web2: v2 failed, current points back at ${path.join(h2.dir, 'releases/v1')}`);
    expect(run.output).toContain('smoothctl reload exited 1');
    expect(run.output).toContain('DATABASE_URL is not set');
    // web3: never reloaded, same workers, current unchanged.
    expect(current(h3)).toBe(path.join(h3.dir, 'releases/v1'));
    expect((await h3.daemon.status()).reload.id).toBe(0);
    expect((await h3.daemon.workerPids()).sort()).toEqual([...h3.pidsBefore].sort());
    expect(run.output).not.toContain('[web3]');
    for (const h of hosts) expect(h.load.failed, `${h.name}: ${JSON.stringify([...h.load.errors])}`).toBe(0);
    console.log(`failing play: ${run.ms} ms\n${run.output.split('\n').filter((l) => /fatal|web2: v2|RECAP|^web/.test(l)).join('\n')}`);
  }, 150_000);

  it('fails clearly and changes nothing when releases/NAME is missing on a host', async () => {
    const h = await host('web1');
    const run = await deploy([h], 'v9');
    await Promise.all(loads.splice(0).map((l) => l.stop()));

    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toContain(`${path.join(h.dir, 'releases/v9')} does not exist (or is not a folder) on web1: copy the release there first. Nothing was changed on this host.`);
    expect(current(h)).toBe(path.join(h.dir, 'releases/v1'));
    expect((await h.daemon.status()).reload.id).toBe(0);
    expect((await h.daemon.workerPids()).sort()).toEqual([...h.pidsBefore].sort());
    expect(h.load.failed).toBe(0);
  }, 120_000);

  it('says so when current or a running smoothd is missing (a first deploy is not its job)', async () => {
    const noCurrent = tempDir('smoothd-fleet-');
    const noDaemon = tempDir('smoothd-fleet-');
    dirs.push(noCurrent, noDaemon);
    fs.mkdirSync(path.join(noCurrent, 'releases/v1'), { recursive: true });
    release(noDaemon, 'v1');
    const inventory = (dir: string, name: string): string =>
      writeInventory(dir, [inventoryHost({ name, dir, socket: path.join(dir, 'ctl.sock') })]);
    const [fresh, stopped] = await Promise.all([
      runPlaybook(PLAYBOOK, inventory(noCurrent, 'fresh'), { release: 'v1' }),
      runPlaybook(PLAYBOOK, inventory(noDaemon, 'stopped'), { release: 'v1' }),
    ]);

    expect(fresh.code, fresh.output).not.toBe(0);
    expect(fresh.output).toContain(`${path.join(noCurrent, 'current')} does not exist on fresh. This playbook rolls a service that already runs: a first deploy is not its job.`);
    expect(stopped.code, stopped.output).not.toBe(0);
    expect(stopped.output).toContain(`smoothd does not answer on ${path.join(noDaemon, 'ctl.sock')} on stopped (smoothctl status exited 69`);
    expect(stopped.output).toContain('Nothing was changed on this host.');
    expect(fs.existsSync(path.join(noCurrent, 'current'))).toBe(false);
    expect(current({ dir: noDaemon } as Host)).toBe(path.join(noDaemon, 'releases/v1'));
  }, 120_000);

  it('refuses smoothd_serial set only in the inventory, which serial cannot read', async () => {
    const dir = tempDir('smoothd-fleet-');
    dirs.push(dir);
    release(dir, 'v1');
    const hostsInv = ['a', 'b'].map((name) => inventoryHost({ name, dir, socket: path.join(dir, 'ctl.sock') }));
    const inv = writeInventory(dir, hostsInv, { smoothd_serial: 2 });
    const run = await runPlaybook(PLAYBOOK, inv, { release: 'v1' });

    expect(run.code, run.output).not.toBe(0);
    expect(run.output).toContain('smoothd_serial=2 is set in the inventory, but Ansible sizes batches before it reads inventory variables');
    expect(run.output).toContain('-e smoothd_serial=2');
    expect(run.output).not.toContain('[b]');
  }, 120_000);
});
