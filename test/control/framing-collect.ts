import { LineSplitter } from '../../src/control/framing.js';

/** A LineSplitter (limit optional) that keeps the lines it read and the oversize reports it made. */
export function collect(maxLineBytes?: number) {
  const lines: string[] = [];
  const oversize: Array<[number, number]> = [];
  const splitter = new LineSplitter({
    ...(maxLineBytes !== undefined ? { maxLineBytes } : {}),
    onLine: (l) => lines.push(l),
    onOversize: (seen, limit) => oversize.push([seen, limit]),
  });
  return { splitter, lines, oversize };
}
