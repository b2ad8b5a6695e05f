// CI: a fresh clone of this repository installs as the README promises and runs the README's commands as printed.
//
// 1. `git clone` of this checkout's HEAD into a temporary folder (beside a link to ../shared, as the README's paths
//    expect), then `npm ci --offline` from the npm cache that .ci/run's own `npm ci` filled: it must succeed without
//    an engine, project-config or install-scripts warning, without running onnxruntime-node's install script (its
//    CUDA provider download: no provider file may appear), and fill node_modules to the size the README states.
// 2. Every command of the README's fenced `sh` blocks, in order, in the clone, with `npm_config_offline=true` (the
//    README's `npm install` is served by the same cache): a command that starts a server runs in the background until
//    the next one, once /health answers; the others must exit 0, and curl's replies must not be errors. The `ts` block
//    runs with node against the server of its section. SKIPPED lists, with reasons, the commands that cannot run here.
//
// Where a network namespace can be made (`unshare -rn`), all of it runs there: no network at all, so an install that
// reached for anything fails, and port 8000 is its own. Elsewhere onnxruntime-node's downloader (global-agent) is sent
// to a closed port, and port 8000 must be free.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fencedBlocks, shellCommands, type Command } from './readme-commands.ts';

const ROOT = resolve(import.meta.dirname, '..');
const HEALTH_URL = 'http://127.0.0.1:8000/health'; // the README's port
// Bounds, so that a hang fails CI rather than holds it: an offline npm ci and a server's first start (the README's
// `npm install`, then building the demo pair) take under a minute on 2 busy cores, a README command seconds.
const INSTALL_TIMEOUT_MS = 300_000;
const SERVER_START_TIMEOUT_MS = 300_000;
const COMMAND_TIMEOUT_MS = 180_000;
// Past a server's own deadline for in-flight requests on SIGTERM (--shutdown-timeout-ms, 30 s).
const STOP_GRACE_MS = 35_000;
// How far node_modules may be from the README's figure before the README is wrong (du differs by filesystem).
const SIZE_TOLERANCE = 0.2;

/** Commands of the README's sh blocks that cannot run here, with why; keys have comments and extra spaces removed. */
const SKIPPED: Record<string, string> = {
  'npm test': ".ci/run's next step",
  'npx specserve serve --target ./SmolLM2-360M-Instruct --draft ./SmolLM2-135M-Instruct --dtype int8 --draft-dtype int8':
    'the SmolLM2 folders come from Hugging Face',
  'npx specserve convert llama2c stories110M.bin --tokenizer tokenizer.bin --out models/stories110M':
    'stories110M.bin and tokenizer.bin come from Hugging Face (karpathy/tinyllamas)',
  'npx specserve convert llama2c stories15M.bin --tokenizer tokenizer.bin --out models/stories15M':
    'stories15M.bin and tokenizer.bin come from Hugging Face (karpathy/tinyllamas)',
  'npx specserve serve --target models/stories110M --draft models/stories15M': 'needs the two models above',
  'npm ci && docker/install-cuda-provider.sh': 'replaces onnxruntime-node with its CUDA 13 build, for an NVIDIA GPU',
  'export LD_LIBRARY_PATH=/path/to/cuda-13/lib:/path/to/cudnn/lib': 'placeholder paths to CUDA 13 and cuDNN',
  'npx specserve serve --device cuda --target ./model --draft ./draft --draft-device cpu': 'an NVIDIA GPU, and placeholder folders',
  'kubectl apply -k deploy/kubernetes/base': 'a Kubernetes cluster (the kustomize renders above run, and npm test validates them)',
  'kubectl apply -k deploy/kubernetes/prometheus-adapter': 'a Kubernetes cluster with prometheus-adapter',
  'SPECSERVE_LB_BIND=0.0.0.0:8000 SPECSERVE_REPLICA_1=10.0.0.11:8000 SPECSERVE_REPLICA_2=10.0.0.12:8000 HAPROXY_STATS_SOCKET=/run/haproxy/specserve.sock haproxy -f deploy/haproxy/haproxy.cfg':
    'replicas at example addresses; npm test runs this file on loopback in front of two (haproxy-drain.test.ts)',
};

// Debian's kubectl is installed by .ci/run where apt can reach Debian; where it could not, the renders are skipped
// (and so are npm test's, with the same printed reason) rather than failing as a missing program.
if (spawnSync('sh', ['-c', 'command -v kubectl']).status !== 0) {
  for (const dir of ['base', 'overlays/gpu', 'overlays/demo']) {
    SKIPPED[`kubectl kustomize deploy/kubernetes/${dir}`] = "kubectl is not installed (.ci/run installs Debian's kubernetes-client)";
  }
}

const NPM_WARNING = /^npm warn (EBADENGINE|Unknown project config|install-scripts)\b.*$/gm;

// --- running commands ------------------------------------------------------------------------------------------------

// The caller's npm_*, SPECSERVE_*, HOST and PORT would change what the README's commands do (but its npm cache,
// registry and user config are where the offline install finds its packages); the cache serves every install, and global-agent (onnxruntime-node's downloader) gets a closed port.
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env)
  .filter(([k]) => (!/^(npm_|SPECSERVE_)/.test(k) || /^npm_config_(cache|registry|userconfig)$/i.test(k)) && k !== 'HOST' && k !== 'PORT'));
env.npm_config_offline = 'true';
env.GLOBAL_AGENT_HTTP_PROXY = 'http://127.0.0.1:9';

interface Started {
  done: Promise<{ code: number | null; output: string }>;
  output: () => string;
  stop: () => Promise<void>;
}

/** `command` under bash in its own process group, killed after `timeoutMs` (a server: null, stopped by its caller). */
function start(command: string, cwd: string, timeoutMs: number | null): Started {
  const child = spawn('bash', ['-c', command], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch { /* already gone */ }
  };
  const timer = timeoutMs === null ? undefined : setTimeout(() => {
    output += `\n[readme-check: killed after ${timeoutMs / 1000} s]`;
    kill('SIGKILL');
  }, timeoutMs);
  const done = new Promise<{ code: number | null; output: string }>((res) => child.on('close', (code) => {
    clearTimeout(timer);
    res({ code, output });
  }));
  return {
    done,
    output: () => output,
    stop: async () => {
      kill('SIGTERM');
      const killer = setTimeout(() => kill('SIGKILL'), STOP_GRACE_MS);
      await done;
      clearTimeout(killer);
    },
  };
}

const run = (command: string, cwd: string, timeoutMs = COMMAND_TIMEOUT_MS) => start(command, cwd, timeoutMs).done;

const tail = (text: string, lines = 25) => text.trimEnd().split('\n').slice(-lines).map((l) => `    | ${l}`).join('\n');
const npmWarnings = (output: string) => output.match(NPM_WARNING) ?? [];

async function healthy(): Promise<boolean> {
  try {
    return (await fetch(HEALTH_URL, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

// --- the README ------------------------------------------------------------------------------------------------------

const isServer = (c: Command) => /(^|&& )npm start$/.test(c.key) || /^npx specserve serve\b/.test(c.key);

/** Why a command's output shows it failed although it exited 0; null when it did not. */
function outputProblem(c: Command, output: string): string | null {
  const warnings = npmWarnings(output);
  if (warnings.length) return `npm warned:\n${warnings.join('\n')}`;
  if (c.key.startsWith('curl ')) {
    const body = output.trim();
    if (body.startsWith('data:')) {
      const events = body.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
      if (events.at(-1) !== '[DONE]') return 'the stream did not end with [DONE]';
      const failed = events.slice(0, -1).find((e) => 'error' in JSON.parse(e));
      return failed ? `an error event: ${failed}` : null;
    }
    try {
      const json = JSON.parse(body) as { error?: { message?: string } };
      return json.error ? `an error reply: ${json.error.message}` : null;
    } catch {
      return 'the reply is not JSON';
    }
  }
  if (c.key.startsWith('npm run loadtest ')) {
    const statuses = /Responses by status: (.*)\./.exec(output)?.[1] ?? 'none';
    return /^200: \d+$/.test(statuses) ? null : `responses by status: ${statuses}`;
  }
  return null;
}

// --- isolation -------------------------------------------------------------------------------------------------------

if (process.argv.includes('--list')) {
  for (const block of fencedBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'))) {
    if (block.lang === 'ts') console.log('run   (the ts snippet, with node)');
    if (block.lang !== 'sh') continue;
    for (const c of shellCommands(block.code)) console.log(c.key in SKIPPED ? `skip  ${c.key}  (${SKIPPED[c.key]})` : `${isServer(c) ? 'serve' : 'run  '} ${c.key}`);
  }
  process.exit(0);
}
if (!process.argv.includes('--isolated')) {
  const probe = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up'], { stdio: 'ignore' });
  if (probe.status === 0) {
    const self = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh',
      process.execPath, join(ROOT, 'bin/run-ts.js'), join(ROOT, '.ci/readme-check.ts'), '--isolated'], { stdio: 'inherit' });
    process.exit(self.status ?? 1);
  }
  console.log('readme-check: no network namespace here (unshare -rn); the network stays, onnxruntime-node\'s downloader ' +
    'is pointed at a closed port');
}

// --- the check -------------------------------------------------------------------------------------------------------

const failures: string[] = [];
const fail = (what: string, why: string) => {
  failures.push(what);
  console.log(`FAIL  ${what}\n${why}`);
};
const pass = (what: string, ms: number) => console.log(`ok    ${what} (${(ms / 1000).toFixed(1)} s)`);

const shared = resolve(ROOT, '../shared');
if (!existsSync(join(shared, 'models'))) {
  console.error(`readme-check: ${shared}/models is missing (the README's commands read ../shared/models)`);
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), 'specserve-readme-'));
const clone = join(work, 'specserve');
let server: Started | null = null;
try {
  symlinkSync(realpathSync(shared), join(work, 'shared'));
  const head = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout.trim();
  console.log(`readme-check: a clone of ${head}${dirty ? ' (uncommitted changes are not in it)' : ''} in ${clone}`);
  const cloned = await run(`git clone --quiet ${JSON.stringify(ROOT)} ${JSON.stringify(clone)}`, work);
  if (cloned.code !== 0) throw new Error(`git clone failed:\n${cloned.output}`);

  // 1. The install.
  let t = performance.now();
  const install = await run('npm ci --offline', clone, INSTALL_TIMEOUT_MS);
  const warnings = npmWarnings(install.output);
  if (install.code !== 0) throw new Error(`npm ci --offline failed:\n${tail(install.output)}`);
  if (warnings.length) fail('npm ci --offline', `npm warned:\n${warnings.join('\n')}`);
  else pass('npm ci --offline: no engine, project-config or install-scripts warning', performance.now() - t);
  const ortBin = join(clone, 'node_modules/onnxruntime-node/bin/napi-v6');
  const providers = existsSync(ortBin) ? readdirSync(ortBin, { recursive: true, encoding: 'utf8' }).filter((f) => /providers_cuda/.test(f)) : [];
  if (providers.length) fail("onnxruntime-node's install script was skipped", `its download left ${providers.join(', ')}`);
  else pass("onnxruntime-node's install script was skipped (no CUDA provider under its bin/)", 0);
  const readme = readFileSync(join(clone, 'README.md'), 'utf8');
  const sizeMb = Number(spawnSync('du', ['-sm', join(clone, 'node_modules')], { encoding: 'utf8' }).stdout.split('\t')[0]);
  const statedMb = Number(/about (\d+) MB in `node_modules`/.exec(readme)?.[1]);
  if (!(Math.abs(sizeMb - statedMb) <= SIZE_TOLERANCE * statedMb)) {
    fail('node_modules size', `du: ${sizeMb} MB; the README says "about ${statedMb} MB in \`node_modules\`"`);
  } else {
    pass(`node_modules: ${sizeMb} MB (the README: about ${statedMb} MB)`, 0);
  }
  if (failures.length) throw new Error('the install failed; the README\'s commands were not run');

  // 2. The README's commands.
  const used = new Set<string>();
  let numSnippets = 0;
  for (const block of fencedBlocks(readme)) {
    if (block.lang === 'ts') {
      const file = join(clone, '.tmp', `readme-snippet-${++numSnippets}.mjs`);
      mkdirSync(join(clone, '.tmp'), { recursive: true });
      writeFileSync(file, block.code);
      t = performance.now();
      const r = await run(`node ${JSON.stringify(file)}`, clone);
      if (r.code !== 0) fail(`the README's ts snippet ${numSnippets}`, tail(r.output));
      else pass(`the README's ts snippet ${numSnippets}`, performance.now() - t);
      continue;
    }
    if (block.lang !== 'sh') continue;
    for (const c of shellCommands(block.code)) {
      if (c.key in SKIPPED) {
        used.add(c.key);
        console.log(`skip  ${c.key}  (${SKIPPED[c.key]})`);
        continue;
      }
      t = performance.now();
      if (isServer(c)) {
        if (server) await server.stop();
        server = null;
        if (await healthy()) {
          fail(c.text, '    port 8000 already answers /health: another server is running there');
          continue;
        }
        const s = start(c.text, clone, null);
        let exited = false;
        void s.done.then(() => (exited = true));
        const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
        while (!exited && Date.now() < deadline && !(await healthy())) await new Promise((r) => setTimeout(r, 500));
        const problem = exited || !(await healthy()) ? 'its server did not answer /health' : outputProblem(c, s.output());
        if (problem) {
          fail(c.text, `    ${problem}\n${tail(s.output())}`);
          await s.stop();
        } else {
          pass(`${c.key}  (serving)`, performance.now() - t);
          server = s;
        }
        continue;
      }
      const r = await run(c.text, clone);
      const problem = r.code !== 0 ? `exit status ${r.code}` : outputProblem(c, r.output);
      if (problem) fail(c.text, `    ${problem}\n${tail(r.output)}`);
      else pass(c.key, performance.now() - t);
    }
  }
  const stale = Object.keys(SKIPPED).filter((k) => !used.has(k));
  if (stale.length) fail('SKIPPED', `    entries that match no README command (update .ci/readme-check.ts):\n${stale.map((k) => `    ${k}`).join('\n')}`);
} catch (e) {
  fail('readme-check', `    ${(e as Error).message}`);
} finally {
  if (server) await server.stop();
  rmSync(work, { recursive: true, force: true });
}
console.log(failures.length ? `readme-check: ${failures.length} failed` : 'readme-check: the README runs as printed');
process.exit(failures.length ? 1 : 0);
