// haproxy (Debian's package) running deploy/haproxy/haproxy.cfg as shipped, on loopback, with its stats socket.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { scratchDir } from './shared-models.ts';
import { freePort } from './server-process.ts';

const CONFIG = resolve(import.meta.dirname, '../../deploy/haproxy/haproxy.cfg');

export interface Haproxy {
  url: string;
  child: ChildProcess;
  /** Each server's row of `show stat` (status UP / DOWN / ..., and its counters), by server name. */
  stats(): Promise<Map<string, Record<string, string>>>;
  /** Resolves once `server` has `status`, polling every 20 ms; rejects after `timeoutMs`. */
  waitFor(server: string, status: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startHaproxy(binary: string, replicas: [string, string]): Promise<Haproxy> {
  const socket = join(scratchDir('haproxy'), 'stats.sock');
  const port = await freePort();
  let log = '';
  const child = spawn(binary, ['-f', CONFIG, '-db'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SPECSERVE_LB_BIND: `127.0.0.1:${port}`, SPECSERVE_REPLICA_1: replicas[0], SPECSERVE_REPLICA_2: replicas[1], HAPROXY_STATS_SOCKET: socket },
  });
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((res) => child.on('exit', () => res()));

  const query = (command: string) => new Promise<string>((res, rej) => {
    let out = '';
    const c = connect(socket, () => c.end(`${command}\n`));
    c.setTimeout(2000, () => c.destroy(new Error(`haproxy's stats socket did not answer \`${command}\` in 2 s`)));
    c.on('data', (d) => (out += d.toString()));
    c.on('end', () => res(out));
    c.on('error', rej);
  });
  const stats = async () => {
    const [header, ...rows] = (await query('show stat')).trim().split('\n');
    const names = header.replace(/^# /, '').split(',');
    const servers = new Map<string, Record<string, string>>();
    for (const row of rows) {
      const fields = Object.fromEntries(row.split(',').map((v, i) => [names[i], v]));
      if (fields.pxname === 'specserve' && fields.svname !== 'BACKEND') servers.set(fields.svname, fields);
    }
    return servers;
  };
  const waitFor = async (server: string, status: string, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = (await stats().catch(() => null))?.get(server)?.status;
      if (now?.startsWith(status)) return;
      if (Date.now() > deadline) throw new Error(`haproxy: ${server} is ${now}, not ${status}, after ${timeoutMs} ms\n${log}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  // Up once the stats socket answers.
  const deadline = Date.now() + 10_000;
  while (!(await stats().then(() => true, () => false))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`haproxy did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`, child, stats, waitFor,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
