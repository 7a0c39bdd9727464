// A WebSocket client for the gateway example: sends {"id", "text"} every
// interval, prints each answer (with the business worker's generation), and
// reconnects when the gateway closes the connection (`smoothctl restart
// gateway`), sending the messages that were not answered again (the example's
// business call is an echo, so repeating it is harmless).
//
//   node examples/gateway/client.js [ws://127.0.0.1:8090/] [interval ms, default 1000]
let WebSocket;
try {
  ({ WebSocket } = await import('ws'));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  console.error('client: the "ws" package is not installed; run `npm install ws`');
  process.exit(1);
}

const url = process.argv[2] ?? 'ws://127.0.0.1:8090/';
const everyMs = Number(process.argv[3] ?? 1000);
if (!Number.isFinite(everyMs) || everyMs <= 0) {
  console.error(`client: the interval must be a positive number of milliseconds, got ${JSON.stringify(process.argv[3])}`);
  process.exit(64);
}

let nextId = 1;
const unanswered = new Map(); // id -> message text
let ws = null;

function connect() {
  ws = new WebSocket(url);
  ws.on('open', () => {
    console.log(`connected to ${url}`);
    for (const text of unanswered.values()) ws.send(text);
  });
  ws.on('message', (data) => {
    const answer = JSON.parse(data.toString('utf8'));
    unanswered.delete(answer.id);
    if (answer.error) console.log(`#${answer.id} error: ${answer.error}`);
    else console.log(`#${answer.id} answered by business worker ${answer.worker} (pid ${answer.pid}) generation ${answer.generation}`);
  });
  ws.on('close', (code, reason) => {
    console.log(`disconnected (${code} ${reason.toString() || '-'}); reconnecting`);
    setTimeout(connect, 200);
  });
  ws.on('error', (err) => console.log(`connection error: ${err.message}`));
}

connect();
setInterval(() => {
  const id = nextId++;
  const text = JSON.stringify({ id, text: `message ${id}` });
  unanswered.set(id, text);
  if (ws.readyState === WebSocket.OPEN) ws.send(text);
}, everyMs);
