import { describe, expect, it } from 'vitest';
import { encodeLine, jsonDepthExceeds } from '../../src/control/framing.js';
import { collect } from './framing-collect.js';


describe('LineSplitter', () => {
  it('splits several lines in one chunk and keeps a partial line for the next', () => {
    const { splitter, lines } = collect();
    splitter.push(Buffer.from('{"a":1}\n{"b":2}\n{"c"'));
    expect(lines).toEqual(['{"a":1}', '{"b":2}']);
    splitter.push(Buffer.from(':3}'));
    expect(lines).toHaveLength(2);
    splitter.push(Buffer.from('\n'));
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });

  it('joins a line split over many chunks', () => {
    const { splitter, lines } = collect();
    for (const ch of 'hello world\n') splitter.push(Buffer.from(ch));
    expect(lines).toEqual(['hello world']);
  });

  it('tolerates \\r\\n, also when \\r and \\n arrive in different chunks', () => {
    const { splitter, lines } = collect();
    splitter.push(Buffer.from('one\r\ntwo\r'));
    splitter.push(Buffer.from('\nthree\n'));
    expect(lines).toEqual(['one', 'two', 'three']);
  });

  it('decodes a multi-byte character split across chunks', () => {
    const { splitter, lines } = collect();
    const bytes = Buffer.from('"é€😀"\n');
    for (let i = 0; i < bytes.length; i++) splitter.push(bytes.subarray(i, i + 1));
    expect(lines).toEqual(['"é€😀"']);
  });

  it('skips blank lines', () => {
    const { splitter, lines } = collect();
    splitter.push('\n\r\n   \nx\n\n');
    expect(lines).toEqual(['x']);
  });

  it('accepts a line of exactly the limit (with or without \\r) and refuses one byte more', () => {
    const a = collect(8);
    a.splitter.push('12345678\n');
    a.splitter.push('12345678\r');
    a.splitter.push('\n');
    expect(a.lines).toEqual(['12345678', '12345678']);
    expect(a.oversize).toEqual([]);

    const b = collect(8);
    b.splitter.push('123456789\n');
    expect(b.lines).toEqual([]);
    expect(b.oversize).toEqual([[9, 8]]);
  });

  it('refuses an endless line as soon as it passes the limit, without buffering it, and stops', () => {
    const { splitter, lines, oversize } = collect(1000);
    let accepted = 0;
    for (let i = 0; i < 100; i++) {
      if (!splitter.push(Buffer.alloc(300, 0x61))) break;
      accepted++;
      expect(splitter.bufferedBytes).toBeLessThanOrEqual(1000);
    }
    expect(accepted).toBe(3); // 900 bytes held; the 4th chunk makes 1200
    expect(oversize).toEqual([[1200, 1000]]);
    expect(splitter.refused).toBe(true);
    expect(splitter.bufferedBytes).toBe(0);
    expect(splitter.push('{"ok":1}\n')).toBe(false);
    expect(lines).toEqual([]);
    expect(oversize).toHaveLength(1);
  });

  it('delivers lines before an oversize one in the same chunk', () => {
    const { splitter, lines, oversize } = collect(4);
    splitter.push('ab\ncdefgh\nij\n');
    expect(lines).toEqual(['ab']);
    expect(oversize).toHaveLength(1);
  });

  it('returns an unterminated last line at end()', () => {
    const { splitter } = collect();
    splitter.push('{"x":1}\r');
    expect(splitter.end()).toBe('{"x":1}');
    expect(splitter.end()).toBeNull();
    const b = collect();
    b.splitter.push('   ');
    expect(b.splitter.end()).toBeNull();
  });

  it('rejects a nonsensical limit', () => {
    expect(() => collect(0)).toThrow(RangeError);
  });
});

describe('jsonDepthExceeds', () => {
  it('counts nesting of arrays and objects', () => {
    expect(jsonDepthExceeds('[[[]]]', 3)).toBe(false);
    expect(jsonDepthExceeds('[[[[]]]]', 3)).toBe(true);
    expect(jsonDepthExceeds('{"a":{"b":[1]}}', 3)).toBe(false);
    expect(jsonDepthExceeds('{"a":{"b":[{}]}}', 3)).toBe(true);
    expect(jsonDepthExceeds('[[],[],[]]', 2)).toBe(false);
  });

  it('ignores brackets inside strings, including after escaped quotes', () => {
    expect(jsonDepthExceeds('["[[[[[[", "\\"[[[[[", "\\\\"]', 1)).toBe(false);
    expect(jsonDepthExceeds('"\\\\"[[', 1)).toBe(true);
  });

  it('handles hostile input quickly', () => {
    expect(jsonDepthExceeds('['.repeat(1_000_000), 64)).toBe(true);
  });
});

describe('encodeLine', () => {
  it('adds one newline and refuses what JSON cannot hold', () => {
    expect(encodeLine({ a: 'x\ny' })).toBe('{"a":"x\\ny"}\n');
    expect(() => encodeLine(undefined)).toThrow(TypeError);
    expect(() => encodeLine({ n: 1n })).toThrow();
  });
});
