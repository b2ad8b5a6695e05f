// Starts a worker thread whose code is TypeScript (workerData.entry), through tsx's loader like bin/specserve.js.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
