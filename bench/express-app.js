// A realistic Node worker for the benchmark's start-up phase (README
// "Measured numbers"): Express 5 with its dependency tree, JSON body parsing,
// a router and a few routes, served through smoothd/worker. Loading it compiles
// a few hundred kB of JavaScript, which is what NODE_COMPILE_CACHE saves.
//
//   smoothd: command: [node, bench/express-app.js], ready: ipc
//   alone:   node bench/express-app.js   (listens on $PORT or 3000)
import http from 'node:http';
import express from 'express';
import { listen } from 'smoothd/worker';

const app = express();
app.disable('x-powered-by');
app.use(express.json({ limit: '64kb' }));
const api = express.Router();
api.get('/items/:id', (req, res) => res.json({ id: req.params.id, worker: process.env.SMOOTHD_WORKER_ID ?? '-' }));
api.post('/items', (req, res) => res.status(201).json({ created: req.body ?? null }));
app.use('/api', api);
app.get('/', (_req, res) => res.type('text/plain').send(`hello from worker ${process.env.SMOOTHD_WORKER_ID ?? '-'} pid ${process.pid}\n`));
app.use((_req, res) => res.status(404).json({ error: 'not found' }));

await listen(http.createServer(app), { drainTimeoutMs: 8000 });
