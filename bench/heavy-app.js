// A worker that loads a lot of code before it is ready: the TypeScript
// compiler (~9 MB of JavaScript, a devDependency of smoothd), as large apps
// with big dependency trees do. bench/startup.js --app bench/heavy-app.js
// shows what NODE_COMPILE_CACHE saves on such a start-up.
import http from 'node:http';
import { createRequire } from 'node:module';
import { listen } from 'smoothd/worker';

const ts = createRequire(import.meta.url)('typescript');
const parsed = ts.createSourceFile('probe.ts', 'export const x: number = 1;', ts.ScriptTarget.Latest);
const server = http.createServer((_req, res) => res.end(`${parsed.statements.length} statement(s), worker ${process.env.SMOOTHD_WORKER_ID ?? '-'}\n`));
await listen(server, { drainTimeoutMs: 8000 });
