import { describe, it, expect } from 'vitest';
import { addressesOverlap, canonicalIPv6, parseListenAddress } from '../../src/config/listen.js';
import type { ListenAddress } from '../../src/config/types.js';

const base = '/etc/smoothd';

function parse(text: string): ListenAddress {
  const result = parseListenAddress(text, base);
  if (typeof result === 'string') throw new Error(`${text}: ${result}`);
  return result;
}

function problem(text: string): string {
  const result = parseListenAddress(text, base);
  if (typeof result !== 'string') throw new Error(`${text} was accepted: ${JSON.stringify(result)}`);
  return result;
}

describe('parseListenAddress', () => {
  it('reads HOST:PORT for IPv4', () => {
    expect(parse('127.0.0.1:8080')).toEqual({
      kind: 'tcp',
      host: '127.0.0.1',
      port: 8080,
      family: 4,
      key: 'tcp:127.0.0.1:8080',
    });
  });

  it('reads :PORT and *:PORT as all IPv4 interfaces', () => {
    expect(parse(':80')).toMatchObject({ host: '0.0.0.0', port: 80, family: 4, key: 'tcp:0.0.0.0:80' });
    expect(parse('*:80')).toMatchObject({ host: '0.0.0.0', port: 80, family: 4 });
  });

  it('reads localhost as 127.0.0.1', () => {
    expect(parse('localhost:3000')).toMatchObject({ host: '127.0.0.1', key: 'tcp:127.0.0.1:3000' });
  });

  it('reads [IPv6]:PORT and canonicalises the address for the key', () => {
    expect(parse('[::1]:8080')).toEqual({ kind: 'tcp', host: '::1', port: 8080, family: 6, key: 'tcp:[::1]:8080' });
    expect(parse('[0:0:0::1]:8080').key).toBe('tcp:[::1]:8080');
    expect(parse('[::]:443')).toMatchObject({ host: '::', family: 6 });
    expect(parse('[2001:DB8:0:0:1:0:0:1]:1')).toMatchObject({ host: '2001:db8::1:0:0:1' });
  });

  it('accepts port 0 and 65535 and refuses 65536', () => {
    expect(parse('127.0.0.1:0')).toMatchObject({ port: 0 });
    expect(parse('127.0.0.1:65535')).toMatchObject({ port: 65535 });
    expect(problem('127.0.0.1:65536')).toMatch(/port from 0 to 65535/);
    expect(problem('127.0.0.1:http')).toMatch(/not a port/);
    expect(problem('127.0.0.1:')).toMatch(/not a port/);
  });

  it('reads unix paths, resolving relative ones against the config folder', () => {
    expect(parse('unix:/run/app.sock')).toEqual({ kind: 'unix', path: '/run/app.sock', key: 'unix:/run/app.sock' });
    expect(parse('unix:app.sock')).toMatchObject({ path: '/etc/smoothd/app.sock', key: 'unix:/etc/smoothd/app.sock' });
    expect(parse('unix:/run//x/../app.sock')).toMatchObject({ path: '/run/app.sock' });
  });

  it('refuses unix paths longer than 107 bytes, saying so', () => {
    const long = `/run/${'a'.repeat(110)}.sock`;
    expect(problem(`unix:${long}`)).toMatch(/at most 107/);
    expect(parse(`unix:/${'a'.repeat(106)}`).kind).toBe('unix');
    expect(problem(`unix:/${'a'.repeat(107)}`)).toMatch(/108 bytes/);
  });

  it('refuses empty and abstract unix paths', () => {
    expect(problem('unix:')).toMatch(/expected a path/);
    expect(problem('unix:@name')).toMatch(/abstract/);
  });

  it('reads systemd:NAME', () => {
    expect(parse('systemd:http')).toEqual({ kind: 'systemd', fdName: 'http', key: 'systemd:http' });
    expect(problem('systemd:')).toMatch(/FileDescriptorName/);
    expect(problem('systemd:a:b')).toMatch(/FileDescriptorName/);
  });

  it('explains each refused form', () => {
    expect(problem('example.com:80')).toMatch(/not host names/);
    expect(problem('::1:80')).toMatch(/brackets, e.g. "\[::1\]:80"/);
    expect(problem('8080')).toMatch(/write ":8080" for all IPv4 interfaces/);
    expect(problem('[::1]')).toMatch(/add the port/);
    expect(problem('[127.0.0.1]:80')).toMatch(/not an IPv6 address/);
    expect(problem('http://127.0.0.1:80')).toMatch(/without a scheme/);
    expect(problem('256.1.1.1:80')).toMatch(/not an IP address/);
    expect(problem('nonsense')).toMatch(/missing ":PORT"/);
  });
});

describe('canonicalIPv6', () => {
  it.each([
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['::ffff:127.0.0.1', '::ffff:127.0.0.1'],
    ['0:0:0:0:0:ffff:7f00:1', '::ffff:127.0.0.1'],
    ['fe80::1%eth0', 'fe80::1%eth0'],
  ])('%s -> %s', (input, expected) => {
    expect(canonicalIPv6(input)).toBe(expected);
  });
});

describe('addressesOverlap', () => {
  const table: Array<[string, string, boolean]> = [
    ['127.0.0.1:8080', '127.0.0.1:8080', true],
    ['127.0.0.1:8080', '127.0.0.1:8081', false],
    ['127.0.0.1:8080', '10.0.0.1:8080', false],
    ['0.0.0.0:8080', '127.0.0.1:8080', true],
    [':8080', '10.0.0.1:8080', true],
    [':8080', '[::1]:8080', false],
    ['[::]:8080', '127.0.0.1:8080', true],
    ['[::]:8080', '0.0.0.0:8080', true],
    ['[::]:8080', '[::1]:8080', true],
    ['[::]:8080', '[::]:8081', false],
    ['[::1]:8080', '[::1]:8080', true],
    ['[::1]:8080', '[0:0::1]:8080', true],
    ['[::1]:8080', '127.0.0.1:8080', false],
    ['[::ffff:127.0.0.1]:8080', '127.0.0.1:8080', true],
    ['[::ffff:127.0.0.1]:8080', '0.0.0.0:8080', true],
    ['localhost:8080', '127.0.0.1:8080', true],
    ['127.0.0.1:0', '127.0.0.1:0', false],
    ['0.0.0.0:0', '127.0.0.1:0', false],
    ['[::]:0', '[::]:0', false],
    ['unix:/run/a.sock', 'unix:/run/a.sock', true],
    ['unix:/run/a.sock', 'unix:/run/b.sock', false],
    ['unix:a.sock', 'unix:/etc/smoothd/a.sock', true],
    ['systemd:http', 'systemd:http', true],
    ['systemd:http', 'systemd:https', false],
    ['systemd:http', '127.0.0.1:80', false],
    ['unix:/run/a.sock', '127.0.0.1:80', false],
  ];

  it.each(table)('%s vs %s -> %s (both ways)', (a, b, expected) => {
    expect(addressesOverlap(parse(a), parse(b))).toBe(expected);
    expect(addressesOverlap(parse(b), parse(a))).toBe(expected);
  });
});
