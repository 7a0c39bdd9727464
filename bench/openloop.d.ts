// Types of bench/openloop.js, for test/bench/openloop.test.ts (the benchmark itself is plain JS).
export class ResponseParser {
  /** Feeds bytes (latin1 text) of one connection; a whole response gives its status and whether the server closes. */
  feed(chunk: string): { status: number; close: boolean } | null;
}
