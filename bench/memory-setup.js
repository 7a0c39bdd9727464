// The set-up the memory tools share (bench/memory.js, memory-probe.mjs,
// heap-snapshots.mjs, malloc-ab.mjs): a free loopback port, and the config of
// the long memory phase — 16 `sh` workers that each write a line to stdout and
// one to stderr (so log rings fill), metrics on when a port is given.
import net from 'node:net';

export const MEMORY_WORKERS = 16;

/** A port that was free a moment ago on 127.0.0.1 (for the metrics listener and the bench's apps). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The long memory phase's smoothd config; `metricsPort` null leaves metrics off. */
export function memoryConfig(metricsPort = null, count = MEMORY_WORKERS) {
  return {
    ...(metricsPort === null ? {} : { metrics: { listen: `127.0.0.1:${metricsPort}` } }),
    groups: {
      chatty: {
        command: ['sh', '-c', 'echo "worker $$ up"; echo "worker $$ note on stderr" >&2; exec sleep infinity'],
        count,
        ready: '50ms',
        readyTimeout: '30s',
        stopTimeout: '5s',
        rolling: { surge: 4 },
      },
    },
  };
}
