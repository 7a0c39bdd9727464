/**
 * Newline framing for the control socket: one JSON value per line, both ways.
 *
 * LineSplitter turns stream chunks into lines:
 * - a line may span any number of chunks, and a chunk may hold many lines;
 * - `\n` ends a line; a `\r` right before it is dropped (`\r\n` tolerated);
 * - bytes are kept as Buffers until the line ends, so a multi-byte UTF-8
 *   character split across chunks decodes correctly;
 * - blank lines (empty or whitespace only) are skipped;
 * - a line longer than `maxLineBytes` (not counting its `\r\n`/`\n`) is
 *   refused as soon as that many bytes have arrived without a newline: the
 *   splitter reports it once, drops what it held and ignores all further
 *   input, so a peer can never make it buffer more than `maxLineBytes + 1`.
 *
 * No imports beyond Buffer: smoothctl loads this on its fast path.
 */

export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

const NL = 0x0a;
const CR = 0x0d;

export interface LineSplitterOptions {
  maxLineBytes?: number;
  onLine: (line: string) => void;
  /**
   * Called once when a line exceeds the limit. `seenBytes` is how many bytes
   * of it had arrived (more than the limit; the rest was never read).
   */
  onOversize: (seenBytes: number, limit: number) => void;
}

export class LineSplitter {
  readonly maxLineBytes: number;
  private readonly onLine: (line: string) => void;
  private readonly onOversize: (seenBytes: number, limit: number) => void;
  private parts: Buffer[] = [];
  private size = 0;
  private stopped = false;

  constructor(opts: LineSplitterOptions) {
    const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxLineBytes must be a positive integer, got ${max}`);
    this.maxLineBytes = max;
    this.onLine = opts.onLine;
    this.onOversize = opts.onOversize;
  }

  /** True once a line was refused; push() ignores input from then on. */
  get refused(): boolean {
    return this.stopped;
  }

  /** Bytes held for the current, unfinished line. */
  get bufferedBytes(): number {
    return this.size;
  }

  /** Feed a chunk. Returns false when the splitter has stopped (oversize line). */
  push(chunk: Buffer | string): boolean {
    if (this.stopped) return false;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    while (start < buf.length) {
      const nl = buf.indexOf(NL, start);
      const end = nl === -1 ? buf.length : nl;
      const pieceLength = end - start;
      if (nl === -1) {
        // No newline in the rest of this chunk: hold it, unless that makes the line too long.
        if (this.size + pieceLength > this.maxLineBytes) {
          // One extra byte is allowed only if it is the `\r` of a `\r\n` not yet arrived.
          const total = this.size + pieceLength;
          const lastIsCr = buf[buf.length - 1] === CR;
          if (!(total === this.maxLineBytes + 1 && lastIsCr)) return this.refuse(total);
        }
        this.parts.push(buf.subarray(start));
        this.size += pieceLength;
        return true;
      }
      let lineLength = this.size + pieceLength;
      // Drop a trailing \r (it may be the last byte of the held parts when the chunk starts with \n).
      const lastByte = pieceLength > 0 ? buf[end - 1] : this.lastHeldByte();
      if (lastByte === CR) lineLength -= 1;
      if (lineLength > this.maxLineBytes) return this.refuse(lineLength);
      let line: Buffer;
      if (this.parts.length === 0) {
        line = buf.subarray(start, end);
      } else {
        this.parts.push(buf.subarray(start, end));
        line = Buffer.concat(this.parts, this.size + pieceLength);
        this.parts = [];
        this.size = 0;
      }
      const text = (lastByte === CR ? line.subarray(0, line.length - 1) : line).toString('utf8');
      start = nl + 1;
      if (text.trim() !== '') {
        this.onLine(text);
        if (this.stopped) return false; // the callback may have stopped us
      }
    }
    return true;
  }

  /**
   * The stream ended. Returns the unterminated last line, if any (a peer that
   * sends one request and half-closes without a newline still gets an answer).
   */
  end(): string | null {
    if (this.stopped || this.size === 0) {
      this.parts = [];
      this.size = 0;
      return null;
    }
    let line = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    if (line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    const text = line.toString('utf8');
    return text.trim() === '' ? null : text;
  }

  /** Stop accepting input (e.g. the connection is closing) and free the buffer. */
  stop(): void {
    this.stopped = true;
    this.parts = [];
    this.size = 0;
  }

  private lastHeldByte(): number | undefined {
    const last = this.parts[this.parts.length - 1];
    return last === undefined ? undefined : last[last.length - 1];
  }

  private refuse(seen: number): false {
    this.stop();
    this.onOversize(seen, this.maxLineBytes);
    return false;
  }
}

/** Serialize one message as a line. Throws if it cannot be serialized (BigInt, cycles). */
export function encodeLine(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('value is not JSON-serializable');
  return text + '\n';
}

/**
 * True when a JSON text nests arrays/objects deeper than `limit` (stops
 * scanning as soon as it does). Brackets inside strings do not count. Run it
 * BEFORE JSON.parse: V8's parser recurses and a deep enough text overflows
 * the stack.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > limit) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}
