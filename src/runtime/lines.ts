/** Splits a byte stream into lines; an overlong line is emitted in pieces instead of growing without bound. */
export class LineSplitter {
  private buf = '';
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLine = 16 * 1024,
  ) {}

  push(chunk: Buffer | string): void {
    this.buf += chunk.toString();
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      this.onLine(line);
    }
    while (this.buf.length > this.maxLine) {
      this.onLine(this.buf.slice(0, this.maxLine));
      this.buf = this.buf.slice(this.maxLine);
    }
  }

  /** The text of the line not yet ended by a newline. */
  get pending(): string {
    return this.buf;
  }

  flush(): void {
    if (this.buf.length > 0) this.onLine(this.buf);
    this.buf = '';
  }
}
