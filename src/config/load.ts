/**
 * The config file boundary: reading and parsing it (loadConfig), and the
 * checks that look at the machine rather than the document (checkConfig:
 * commands, folders, users, setpriv), run by `smoothd --check` and at
 * every start and reload.
 */
import { constants } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml';
import { type Getent, GetentUnavailable, INSTALL_SETPRIV, lookupGroup, lookupUser, systemGetent } from './accounts.js';
import { validateConfig } from './schema.js';
import { type Config, ConfigError, type ConfigIssue, type GroupConfig, type WorkerAccount } from './types.js';

export const DEFAULT_CONFIG_PATH = '/etc/smoothd/smoothd.yaml';

/** execvp's fallback when neither the group's env nor smoothd has a PATH. */
const FALLBACK_PATH = '/usr/local/bin:/usr/bin:/bin';

const EXAMPLE = 'groups: { web: { command: [node, server.js] } }';

/** A config larger than this is refused before it is parsed (a mistaken --config, a log file, /dev/zero). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Most alias references (`*name`) one document may use; yaml's own guard against alias bombs. */
const MAX_ALIAS_COUNT = 100;

/**
 * Reads, parses and validates a config file. Throws ConfigError (exit 78)
 * when the file is missing, unreadable, not YAML or not a valid config.
 */
export async function loadConfig(file: string): Promise<Config> {
  const path = resolve(file);
  const text = await readConfigText(path);
  return parseConfigText(text, path);
}

/**
 * Parses and validates config text; `file` names it in messages and anchors
 * relative paths. Throws only ConfigError, whatever the text: the yaml
 * library rejects some documents late, with plain errors (`<<: 5`, alias
 * bombs), and those become ConfigErrors too (exit 78, never a stack trace).
 */
export function parseConfigText(text: string, file: string): Config {
  const path = resolve(file);
  try {
    return parseAndValidate(text, path);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(path, [{ path: '', message: describeLateYamlError(error) }]);
  }
}

function parseAndValidate(text: string, path: string): Config {
  const fail = (message: string): never => {
    throw new ConfigError(path, [{ path: '', message }]);
  };
  if (text.trim() === '') fail(`the config file is empty; it needs at least ${EXAMPLE}`);
  const nul = text.indexOf('\0');
  if (nul >= 0) fail(`the config holds a NUL byte (character ${nul + 1}): it is not a text file; a config is YAML text, e.g. ${EXAMPLE}`);

  const lineCounter = new LineCounter();
  // merge: `<<: *web` lets one group reuse another's settings.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, merge: true, lineCounter });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      path,
      doc.errors.map((error) => ({ path: '', message: describeYamlError(error, text, lineCounter) })),
    );
  }
  if (doc.contents === null) fail(`the config file has only comments; it needs at least ${EXAMPLE}`);

  keepSourceText(doc);
  return validateConfig(doc.toJS({ mapAsMap: true, maxAliasCount: MAX_ALIAS_COUNT }), path);
}

/** What the yaml library says when it gives up while building values (no position is known then). */
function describeLateYamlError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/alias count/i.test(message)) {
    return (
      `the YAML uses aliases (*name) so often that expanding them would explode (over ${MAX_ALIAS_COUNT} ` +
      `alias uses, the guard against "alias bombs"); write the repeated values out or use fewer aliases`
    );
  }
  if (/merge/i.test(message)) {
    return `YAML merge error: ${message}; a merge key takes a map or an alias of one, e.g. \`<<: *web\` where \`web: &web {...}\``;
  }
  return `the YAML cannot be read as values: ${message}; fix the document (anchors, aliases and merge keys are the usual cause)`;
}

/**
 * Reads the file as UTF-8 text. Refused with a ConfigError: anything that is
 * not a regular file (a folder, a FIFO, a device), a file over
 * MAX_CONFIG_BYTES, bytes that are not UTF-8.
 */
async function readConfigText(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
    const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const info = await handle.stat();
      if (info.isDirectory()) throw Object.assign(new Error('is a folder'), { code: 'EISDIR' });
      if (!info.isFile()) {
        throw new ConfigError(path, [
          {
            path: '',
            message:
              `${path} is ${fileKind(info)}, not a regular file; smoothd reads the config again at every reload, ` +
              'so pass a file with --config FILE',
          },
        ]);
      }
      if (info.size > MAX_CONFIG_BYTES) throw tooLarge(path, info.size);
      const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
      let length = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length > MAX_CONFIG_BYTES) throw tooLarge(path, length);
      }
      bytes = buffer.subarray(0, length);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(path, [{ path: '', message: describeReadError(error, path) }]);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigError(path, [
      { path: '', message: `${path} is not UTF-8 text (is it a binary file?); a config is YAML text, e.g. ${EXAMPLE}` },
    ]);
  }
}

function tooLarge(path: string, size: number): ConfigError {
  return new ConfigError(path, [
    {
      path: '',
      message: `${path} is ${size} bytes or more, over the ${MAX_CONFIG_BYTES}-byte limit for a config; is --config pointing at the right file?`,
    },
  ]);
}

function fileKind(info: import('node:fs').Stats): string {
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

function describeReadError(error: unknown, path: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return `config file not found: ${path}; create it or pass --config FILE`;
    case 'EACCES':
    case 'EPERM':
      return `cannot read config file ${path}: permission denied; run smoothd as a user that can read it, or fix the file's owner or mode`;
    case 'EISDIR':
      return `${path} is a folder, not a config file; pass the file itself with --config FILE`;
    default:
      return `cannot read config file ${path}: ${(error as Error).message}`;
  }
}

function describeYamlError(error: YAMLError, text: string, lineCounter: LineCounter): string {
  const { line, col } = lineCounter.linePos(error.pos[0]);
  const lineText = (text.split(/\r?\n/)[line - 1] ?? '').trim();
  const context = lineText === '' ? '' : ` (line ${line}: ${JSON.stringify(lineText)})`;
  if (error.code === 'MULTIPLE_DOCS') {
    return `YAML error at line ${line}: the file holds more than one document (a "---" line)${context}; smoothd reads one, so remove the extra "---"`;
  }
  const hint = error.code === 'DUPLICATE_KEY' ? '; remove or rename one of the duplicate keys' : '';
  return `YAML syntax error at line ${line}, column ${col}: ${error.message}${context}${hint}`;
}

/**
 * Puts back what the operator wrote where YAML's typing would change it:
 * - numbers and booleans in `command` and `env` become their source text, so
 *   `VERSION: 1.10` stays "1.10" and `ZIP: 01234` keeps its zero;
 * - an octal literal for `socketMode`/`mode` (`0o660`) becomes the string
 *   "0o660", so the schema can tell it from a plain (decimal) `0660`.
 */
function keepSourceText(doc: Document): void {
  visit(doc, {
    Pair(_key, pair) {
      if (!isScalar(pair.key) || !isScalar(pair.value)) return;
      const key = pair.key.value;
      const value = pair.value;
      if ((key === 'socketMode' || key === 'mode') && typeof value.value === 'number' && value.format === 'OCT') {
        value.value = `0o${value.value.toString(8)}`;
      }
    },
  });
  const groups = doc.get('groups', true);
  if (!isMap(groups)) return;
  for (const pair of groups.items) {
    const group = deref(doc, pair.value);
    if (!isMap(group)) continue;
    const env = deref(doc, group.get('env', true));
    if (isMap(env)) {
      for (const item of env.items) if (isPair(item)) restoreScalar(deref(doc, item.value));
    }
    const command = deref(doc, group.get('command', true));
    if (isSeq(command)) for (const item of command.items) restoreScalar(deref(doc, item));
  }
}

function deref(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function restoreScalar(node: unknown): void {
  if (!isScalar(node) || node.source === undefined) return;
  if (typeof node.value === 'number' || typeof node.value === 'boolean') node.value = node.source;
}

// ---------------------------------------------------------------------------
// checkConfig: what the document alone cannot tell.

export interface CheckOptions {
  /** Effective uid smoothd runs as; default process.geteuid(). */
  uid?: number;
  /** PATH for groups whose env sets none; default process.env.PATH. */
  path?: string;
  /** NSS lookups for users and groups; default `getent`. */
  getent?: Getent;
  /**
   * The setpriv smoothd spawns workers through (null: none on this machine).
   * A group with user/group is refused without it. Omitted: not checked.
   */
  setpriv?: string | null;
}

/**
 * Checks that each group can actually be started here: cwd is a folder,
 * command[0] is an executable (PATH lookup with the group's env PATH if set),
 * user and group exist, and smoothd is root and has setpriv when a group sets
 * user or group (switching needs both). Also that socketGroup exists.
 * Returns every issue.
 */
export async function checkConfig(config: Config, options: CheckOptions = {}): Promise<ConfigIssue[]> {
  return (await checkAndResolve(config, options)).issues;
}

async function checkAndResolve(
  config: Config,
  options: CheckOptions,
): Promise<{ issues: ConfigIssue[]; accounts: Map<string, WorkerAccount> }> {
  const uid = options.uid ?? process.geteuid?.() ?? 0;
  const getent = options.getent ?? systemGetent;
  const issues: ConfigIssue[] = [];
  const accounts = new Map<string, WorkerAccount>();
  const add = (path: string, message: string): void => {
    issues.push({ path, message });
  };

  if (config.socketGroup !== null && !/^\d+$/.test(config.socketGroup)) {
    const found = await lookup(() => lookupGroup(config.socketGroup!, getent));
    if (typeof found === 'string') add('socketGroup', found);
    else if (found === null) {
      add('socketGroup', `no group "${config.socketGroup}" on this machine; create it (groupadd ${config.socketGroup}) or fix socketGroup`);
    }
  }

  for (const group of config.groups) {
    const at = (key: string): string => `groups.${group.name}.${key}`;
    const cwdProblem = await folderProblem(group.cwd);
    if (cwdProblem) add(at('cwd'), cwdProblem);

    const command0 = group.command[0];
    const relativeToMissingCwd = command0 !== undefined && command0.includes('/') && !isAbsolute(command0);
    if (command0 !== undefined && !(cwdProblem && relativeToMissingCwd)) {
      const pathEnv = group.env.PATH ?? options.path ?? process.env.PATH;
      const found = await findCommand(command0, group.cwd, pathEnv);
      if ('problem' in found) add(`groups.${group.name}.command[0]`, found.problem);
    }

    if (group.user === null && group.group === null) continue;
    const account = await resolveAccount(group, getent, (key, message) => add(at(key), message));
    if (account) accounts.set(group.name, account);
    const key = group.user !== null ? 'user' : 'group';
    const name = group[key]!;
    if (uid !== 0) {
      add(
        at(key),
        `${key}: needs smoothd to run as root (it runs as uid ${uid}) to switch workers to ${key} "${name}"; ` +
          `remove ${key} or start smoothd as root`,
      );
    } else if (options.setpriv === null) {
      add(
        at(key),
        `${key}: switching workers to ${key} "${name}" needs setpriv, which was not found (in /usr/bin, /bin, /usr/sbin, /sbin ` +
          `or PATH); smoothd never runs such a worker as root: ${INSTALL_SETPRIV}, or remove ${key}`,
      );
    }
  }
  return { issues, accounts };
}

/**
 * The ids a group's workers run as. A user with a passwd entry gets its
 * primary group (unless `group` is set) and its supplementary groups; a
 * numeric uid without an entry has neither, so it needs an explicit `group`.
 */
async function resolveAccount(
  group: GroupConfig,
  getent: Getent,
  add: (key: 'user' | 'group', message: string) => void,
): Promise<WorkerAccount | null> {
  let gid: number | null = null;
  if (group.group !== null) {
    const entry = await lookup(() => lookupGroup(group.group!, getent));
    if (typeof entry === 'string') add('group', entry);
    else if (entry !== null) gid = entry.gid;
    else if (/^\d+$/.test(group.group)) gid = Number(group.group);
    else add('group', `no group "${group.group}" on this machine; create it (groupadd ${group.group}) or fix group`);
    if (gid === null) return null;
  }
  if (group.user === null) return { uid: null, gid: gid!, initGroups: false };

  const entry = await lookup(() => lookupUser(group.user!, getent));
  if (typeof entry === 'string') {
    add('user', entry);
    return null;
  }
  if (entry !== null) return { uid: entry.uid, gid: gid ?? entry.gid, initGroups: true };
  if (!/^\d+$/.test(group.user)) {
    add('user', `no user "${group.user}" on this machine; create it (useradd --system ${group.user}) or fix user`);
    return null;
  }
  if (gid === null) {
    add(
      'user',
      `user ${group.user} has no passwd entry, so it has no primary group: add group: (a group name or a numeric gid), ` +
        `or create the user (useradd --system --uid ${group.user} NAME)`,
    );
    return null;
  }
  return { uid: Number(group.user), gid, initGroups: false };
}

/** Runs an NSS lookup; a lookup that cannot run at all becomes its message. */
async function lookup<T>(run: () => Promise<T>): Promise<T | string> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof GetentUnavailable) return error.message;
    throw error;
  }
}

/**
 * loadConfig followed by checkConfig; throws one ConfigError with every
 * issue. The config it returns carries each group's resolved account.
 */
export async function loadCheckedConfig(file: string, options: CheckOptions = {}): Promise<Config> {
  const config = await loadConfig(file);
  const { issues, accounts } = await checkAndResolve(config, options);
  if (issues.length > 0) throw new ConfigError(config.path, issues);
  return { ...config, groups: config.groups.map((g) => ({ ...g, account: accounts.get(g.name) ?? null })) };
}

async function folderProblem(folder: string): Promise<string | null> {
  try {
    const info = await stat(folder);
    return info.isDirectory() ? null : `${folder} is not a folder; point cwd at the folder to run the command in`;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `${folder} does not exist; create it or fix cwd`;
    if (code === 'EACCES') return `${folder} cannot be reached: permission denied; fix the folder's permissions`;
    return `${folder} cannot be used: ${(error as Error).message}`;
  }
}

// ---------------------------------------------------------------------------
// Command lookup (also used by the runtime before each spawn: through the
// `sh -c exec` wrapper a missing command would only show as exit 127).

/**
 * The absolute path of the program `command0` would run, or null. A name with
 * a `/` is resolved against `cwd`; a bare name is searched in `pathEnv`
 * (empty or relative PATH entries are relative to `cwd`, as for execvp).
 */
export async function resolveCommand(
  command0: string,
  cwd: string,
  pathEnv: string | undefined,
): Promise<string | null> {
  const found = await findCommand(command0, cwd, pathEnv);
  return 'path' in found ? found.path : null;
}

type CommandLookup = { path: string } | { problem: string };

async function findCommand(command0: string, cwd: string, pathEnv: string | undefined): Promise<CommandLookup> {
  if (command0.includes('/')) {
    const candidate = resolve(cwd, command0);
    const problem = await executableProblem(candidate);
    if (problem === null) return { path: candidate };
    return { problem: `${problem.message}; fix the path (relative paths start from cwd ${cwd}) or the file` };
  }
  const searchPath = pathEnv === undefined || pathEnv === '' ? FALLBACK_PATH : pathEnv;
  let firstProblem: string | null = null;
  for (const dir of searchPath.split(delimiter)) {
    const candidate = join(resolve(cwd, dir), command0);
    const problem = await executableProblem(candidate);
    if (problem === null) return { path: candidate };
    // Like execvp, keep searching past a non-executable match, but report it if nothing better turns up.
    if (firstProblem === null && !problem.missing) firstProblem = problem.message;
  }
  if (firstProblem !== null) return { problem: `"${command0}" found in PATH, but ${firstProblem}` };
  return {
    problem:
      `"${command0}" was not found in PATH (${searchPath}); install it, fix the name, ` +
      "give a full path, or set PATH in the group's env",
  };
}

interface FileProblem {
  missing: boolean;
  message: string;
}

async function executableProblem(file: string): Promise<FileProblem | null> {
  const unusable = (message: string): FileProblem => ({ missing: false, message: `${file} ${message}` });
  try {
    const info = await stat(file);
    if (info.isDirectory()) return unusable('is a folder, not a program');
    if (!info.isFile()) return unusable('is not a regular file');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { missing: true, message: `${file} does not exist` };
    return unusable(`cannot be used: ${(error as Error).message}`);
  }
  try {
    await access(file, constants.X_OK);
    return null;
  } catch {
    return unusable(`is not executable; make it executable (chmod +x ${file})`);
  }
}
