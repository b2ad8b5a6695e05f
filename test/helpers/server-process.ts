// The real `specserve serve` process on a loopback port, for tests that watch its memory, signals and exit code.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

const BIN = resolve(import.meta.dirname, '../../bin/specserve.js');

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  log: () => string;
  exited: Promise<number | null>;
  /** Resident set size in bytes (Linux /proc). */
  rss(): number;
}

export async function spawnServer(args: string[]): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const port = await new Promise<number>((res, rej) => {
    const check = () => {
      const m = log.match(/listening at http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && log.includes('"ready"')) return res(Number(m[1]));
      setTimeout(check, 20);
    };
    check();
    void exited.then(() => rej(new Error(`server exited early: ${log}`)));
  });
  return {
    child, url: `http://127.0.0.1:${port}`, log: () => log, exited,
    rss: () => Number(readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)![1]) * 1024,
  };
}

/** A loopback port free a moment ago (for programs that must be told their port, or their peers', up front). */
export async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}
