import { describe, expect, it } from 'vitest';
import { encodeLine, jsonDepthExceeds, LineSplitter } from '../../src/control/framing.js';
import { collect } from './framing-collect.js';

/**
 * The edges of the control socket's framing that framing.test.ts leaves open:
 * lines of exactly the limit held across chunks, the `\r` allowance, lines
 * whose last piece arrives with the newline, a callback that stops the
 * splitter, end() and what comes after it, the texts of the errors a caller
 * sees, and closing brackets in the nesting scan.
 */


describe('LineSplitter limit', () => {
  it('accepts a limit of 1 byte and reads one-byte lines with it', () => {
    const { splitter, lines, oversize } = collect(1);
    expect(splitter.maxLineBytes).toBe(1);
    expect(splitter.push('a\nb\r\n')).toBe(true);
    expect(lines).toEqual(['a', 'b']);
    expect(oversize).toEqual([]);
  });

  it('says what was wrong with a limit that is not a positive integer', () => {
    for (const bad of [0, -5, 1.5, Number.NaN]) {
      expect(() => collect(bad)).toThrow(new RangeError(`maxLineBytes must be a positive integer, got ${bad}`));
    }
  });

  it('holds exactly the limit without a newline and reads the line when the newline follows', () => {
    const { splitter, lines, oversize } = collect(8);
    expect(splitter.push('12345678')).toBe(true);
    expect(splitter.bufferedBytes).toBe(8);
    expect(splitter.push('\n')).toBe(true);
    expect(lines).toEqual(['12345678']);
    expect(oversize).toEqual([]);
  });

  it('refuses one byte over the limit at once when that byte is not a \\r', () => {
    const { splitter, lines, oversize } = collect(8);
    expect(splitter.push('123456789')).toBe(false);
    expect(oversize).toEqual([[9, 8]]);
    expect(splitter.refused).toBe(true);
    expect(splitter.bufferedBytes).toBe(0);
    expect(lines).toEqual([]);
  });

  it('holds the limit plus a \\r split over chunks, and reads the line when its \\n follows', () => {
    const { splitter, lines, oversize } = collect(8);
    expect(splitter.push('1234')).toBe(true);
    expect(splitter.push('5678\r')).toBe(true);
    expect(splitter.bufferedBytes).toBe(9);
    expect(splitter.push('\n')).toBe(true);
    expect(lines).toEqual(['12345678']);
    expect(oversize).toEqual([]);
  });

  it('refuses a line two or more bytes over the limit even when its chunk ends in \\r', () => {
    const a = collect(8);
    expect(a.splitter.push('1234567890\r')).toBe(false);
    expect(a.oversize).toEqual([[11, 8]]);
    const b = collect(8);
    expect(b.splitter.push('12345')).toBe(true);
    expect(b.splitter.push('6789\r')).toBe(false);
    expect(b.oversize).toEqual([[10, 8]]);
    expect(b.lines).toEqual([]);
  });
});

describe('LineSplitter lines over several chunks', () => {
  it('joins a line whose last piece arrives in the chunk with its newline', () => {
    const { splitter, lines } = collect();
    splitter.push('{"jsonrpc":"2.0",');
    splitter.push('"method":"status",');
    expect(splitter.bufferedBytes).toBe(35);
    splitter.push('"id":1}\n{"id":2}\n');
    expect(lines).toEqual(['{"jsonrpc":"2.0","method":"status","id":1}', '{"id":2}']);
    expect(splitter.bufferedBytes).toBe(0);
  });

  it('an empty chunk between a \\r and its \\n changes nothing', () => {
    const { splitter, lines } = collect(3);
    splitter.push('abc\r');
    expect(splitter.push('')).toBe(true);
    expect(splitter.push(Buffer.alloc(0))).toBe(true);
    expect(splitter.bufferedBytes).toBe(4);
    expect(splitter.push('\n')).toBe(true);
    expect(lines).toEqual(['abc']);
  });

  it('returns true after a chunk that ends with a complete line', () => {
    const { splitter, lines } = collect();
    expect(splitter.push('{"a":1}\n')).toBe(true);
    expect(splitter.push(Buffer.from('{"b":2}\n{"c":3}\n'))).toBe(true);
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });
});

describe('LineSplitter stopped by its callback', () => {
  it('delivers no further line of the same chunk once onLine stopped it, and push() says so', () => {
    const lines: string[] = [];
    const splitter: LineSplitter = new LineSplitter({
      onLine: (l) => {
        lines.push(l);
        if (l === 'stop') splitter.stop();
      },
      onOversize: () => {
        throw new Error('no line here is oversize');
      },
    });
    expect(splitter.push('one\nstop\nafter\nmore\n')).toBe(false);
    expect(lines).toEqual(['one', 'stop']);
    expect(splitter.refused).toBe(true);
    expect(splitter.push('later\n')).toBe(false);
    expect(splitter.end()).toBeNull();
    expect(lines).toEqual(['one', 'stop']);
  });
});

describe('LineSplitter end()', () => {
  it('returns an unterminated last line whole, without cutting its last byte', () => {
    const { splitter } = collect();
    splitter.push('{"id":');
    splitter.push('7}');
    expect(splitter.end()).toBe('{"id":7}');
    expect(splitter.bufferedBytes).toBe(0);
  });

  it('leaves the splitter empty and reading after it, whether it held a line or not', () => {
    const a = collect();
    expect(a.splitter.end()).toBeNull();
    a.splitter.push('ab');
    a.splitter.push('c\n');
    expect(a.lines).toEqual(['abc']);

    const b = collect();
    b.splitter.push('held');
    expect(b.splitter.end()).toBe('held');
    b.splitter.push('de');
    b.splitter.push('f\n');
    expect(b.lines).toEqual(['def']);
    expect(b.splitter.end()).toBeNull();
  });
});

describe('encodeLine errors', () => {
  it('says the value is not JSON-serializable', () => {
    expect(() => encodeLine(undefined)).toThrow(new TypeError('value is not JSON-serializable'));
    expect(() => encodeLine(() => 1)).toThrow(/not JSON-serializable/);
  });
});

describe('jsonDepthExceeds closing brackets', () => {
  it('counts a closed object or array as gone, for sibling objects and arrays alike', () => {
    expect(jsonDepthExceeds('[{},{},{},{}]', 2)).toBe(false);
    expect(jsonDepthExceeds('{"a":{},"b":{},"c":{}}', 2)).toBe(false);
    expect(jsonDepthExceeds('[[],[],[],[]]', 2)).toBe(false);
    expect(jsonDepthExceeds('[{},{},{"x":{}}]', 2)).toBe(true);
  });
});
