/**
 * Worker-controlled text (STATUS= lines, stderr tails, failure reasons, error
 * messages) reaches smoothctl's output. A worker must not be able to drive the
 * operator's terminal with it (clear the screen, move the cursor, rewrite an
 * earlier line, set the window title) or fake extra lines in a table. So
 * every control character is shown escaped: C0 (U+0000-U+001F, including tab
 * and newline), DEL, C1 (U+0080-U+009F, e.g. the 8-bit CSI U+009B) and the
 * Unicode bidirectional controls that reorder what is shown. Escaping ESC
 * defuses every ANSI sequence (what follows it is plain text).
 *
 * No imports: smoothctl loads this on its fast path.
 */

const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with each control character written as `\n`, `\r`, `\t`, `\xHH` or `\u{HHHH}`. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => {
    const named = NAMED[c];
    if (named !== undefined) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069]/g;

/**
 * JSON text with the characters JSON.stringify leaves raw (DEL, C1, bidi
 * controls, U+2028/2029) written as `\uHHHH`: the same JSON value, and safe
 * to print on a terminal. (JSON.stringify already escapes C0.)
 */
export function terminalSafeJson(json: string): string {
  // Every character written here is DEL or above U+007F. A status document is
  // mostly plain ASCII: checked by two native scans (a UTF-8 byte count equal
  // to the length means no character above U+007F), not by a regular
  // expression run over some 200 kB on each `status --json` at 1 024 workers.
  if (json.indexOf('\u007f') === -1 && Buffer.byteLength(json, 'utf8') === json.length) return json;
  return json.replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
