// The business worker of the gateway example: answers each message the
// gateway forwards with JSON naming the worker and its generation, so clients
// see the version advance on every `smoothctl reload`.
//
// It listens on the unix socket smoothd holds (fd 3) through smoothd/worker,
// which also reports ready, counts answers for smoothd (`countResponse`: the
// request counters of `smoothctl status` and deploy verification) and drains
// on stop. The protocol (see README.md): newline-framed lines over one
// connection, many calls in flight at once.
//   gateway -> business   `<n> <message JSON>\n`   n: the call's number on this connection
//   business -> gateway   `<n> <answer JSON>\n`    exactly one per call, in any order
//   business -> gateway   `D\n`                    draining: send no new call here
// While draining, the worker keeps answering every call it reads until the
// gateway ends the connection (which it does once nothing is pending), then
// closes it: nothing the gateway sent is dropped, nothing is answered twice.
import net from 'node:net';
import { countResponse, listen } from 'smoothd/worker';

const worker = Number(process.env.SMOOTHD_WORKER_ID ?? 0);
const generation = Number(process.env.SMOOTHD_GENERATION ?? 0);
// A call line: its number, a space, and a message of at most 64 KiB (the gateway's limit).
const MAX_LINE = 64 * 1024 + 32;

/** The answer to one message (JSON text), counted like an HTTP status for smoothd's request counters. */
function answer(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    countResponse(400);
    return JSON.stringify({ id: null, error: 'a message is JSON text such as {"id": 1, "text": "hi"}' });
  }
  if (typeof message !== 'object' || message === null) {
    countResponse(400);
    return JSON.stringify({ id: null, error: 'a message is a JSON object such as {"id": 1, "text": "hi"}' });
  }
  countResponse(200);
  return JSON.stringify({ id: message.id ?? null, echo: message.text ?? null, worker, pid: process.pid, generation });
}

const connections = new Set();
let draining = false;

const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  connections.add(socket);
  socket.setEncoding('utf8');
  let buffered = '';
  socket.on('data', (chunk) => {
    buffered += chunk;
    let out = '';
    let start = 0;
    let nl;
    while ((nl = buffered.indexOf('\n', start)) !== -1) {
      const space = buffered.indexOf(' ', start);
      if (space <= start || space > nl) {
        console.error(`business worker ${worker}: a line without a call number ("<n> <JSON>"); closing the connection`);
        socket.destroy();
        return;
      }
      out += buffered.slice(start, space + 1) + answer(buffered.slice(space + 1, nl)) + '\n';
      start = nl + 1;
    }
    buffered = start === 0 ? buffered : buffered.slice(start);
    if (buffered.length > MAX_LINE) {
      console.error(`business worker ${worker}: a call longer than ${MAX_LINE} bytes; closing the connection`);
      socket.destroy();
      return;
    }
    // All answers to one read go out in one write.
    if (out !== '') socket.write(out);
  });
  // The gateway ended its side: every call it sent is answered (or queued for writing); close ours.
  socket.on('end', () => socket.end());
  socket.on('error', () => socket.destroy());
  socket.on('close', () => connections.delete(socket));
  if (draining) socket.write('D\n');
});

await listen(server, {
  // Stay below stopTimeout in smoothd.yaml.
  drainTimeoutMs: 8000,
  // smoothd/worker stopped accepting; a net server's connections are the
  // app's to end: ask the gateway to move on, then close each once it ends.
  onDrainStart() {
    draining = true;
    for (const socket of connections) socket.write('D\n');
  },
});
console.log(`business worker ${worker} pid ${process.pid} generation ${generation} ready`);
