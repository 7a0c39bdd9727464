// One JSON-RPC call to smoothd's control socket on a fresh connection, for the
// bench scripts: resolves with the result (reload.progress notifications are
// skipped), rejects with the method and smoothd's error message, or after
// `timeoutMs` with no answer.
import net from 'node:net';

export function rpc(socket, method, params, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const c = net.connect(socket);
    let buf = '';
    const timer = setTimeout(() => (c.destroy(), reject(new Error(`${method}: no answer within ${timeoutMs} ms`))), timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method, params })}\n`));
    c.on('data', (s) => {
      buf += s;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (m.id !== 1) continue;
        clearTimeout(timer);
        c.destroy();
        return m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result);
      }
    });
    c.on('error', (e) => (clearTimeout(timer), reject(e)));
  });
}
