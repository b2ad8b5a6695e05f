// The GPU kit's CPU side: files split into parts with checksums and joined again by the runner (bench/gpu/run.sh) with
// coreutils, corrupt and missing parts refused by name, the runner's usage and its clear errors for a machine without
// a GPU or without the CUDA libraries; and the fatbin trimming on a synthetic CUDA library.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { scratchDir } from '../../helpers/shared-models.ts';
import { joinLine, parseSha256sums, sha256, sha256sums, splitFile } from '../../../bench/gpu/chunks.ts';
import { elfSections, fatbinEntries, keepOnlyArch } from '../../../bench/gpu/fatbin.ts';

const RUNNER = resolve(import.meta.dirname, '../../../bench/gpu/run.sh');

function runner(args: string[], env: Record<string, string>) {
  const r = spawnSync('bash', [RUNNER, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH!, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A kit folder as bench/gpu/kit.ts writes one: a file in parts (with its JOINS line) and a whole file. */
function kitWithParts(root: string, data: Buffer, partBytes: number) {
  const kit = join(root, '.gpu-kit');
  const folder = join(kit, 'cuda');
  mkdirSync(folder, { recursive: true });
  const source = join(root, 'provider.xz');
  writeFileSync(source, data);
  const parts = splitFile(source, partBytes, () => folder, 'provider.xz');
  writeFileSync(join(folder, 'extra.so'), 'shared library');
  writeFileSync(join(folder, 'JOINS'), joinLine('provider.xz', sha256(data), parts));
  writeFileSync(join(folder, 'SHA256SUMS'), sha256sums([
    ...parts, { name: 'extra.so', sha256: sha256(Buffer.from('shared library')) },
  ]));
  return { kit, folder, parts, env: { SPECSERVE_GPU_KIT: kit, SPECSERVE_GPU_HOME: join(root, 'home') } };
}

describe('kit parts and the runner that joins them', () => {
  it('splits into parts of at most the limit, and the runner checks, keeps and joins them to the same bytes', () => {
    const root = scratchDir('gpu-kit');
    const data = randomBytes(100_000);
    const { parts, env } = kitWithParts(root, data, 30_000);
    expect(parts.map((p) => p.bytes)).toEqual([30_000, 30_000, 30_000, 10_000]);
    expect(parseSha256sums(sha256sums(parts)).map((p) => p.name)).toEqual(parts.map((p) => p.name));

    const received = runner(['receive'], env);
    expect(received.stderr).toBe('');
    expect(received.status).toBe(0);
    expect(received.stdout).toMatch(/received cuda \(5 files\)/);
    const joined = runner(['join', 'provider.xz'], env);
    expect(joined.status).toBe(0);
    expect(joined.stdout).toMatch(/joined provider.xz from 4 parts/);
    expect(readFileSync(join(env.SPECSERVE_GPU_HOME, 'kit/provider.xz')).equals(data)).toBe(true);
  });

  it('refuses a corrupt part at receive, naming the file', () => {
    const root = scratchDir('gpu-kit');
    const { folder, parts, env } = kitWithParts(root, randomBytes(50_000), 20_000);
    const bad = join(folder, parts[1].name);
    const bytes = readFileSync(bad);
    bytes[7] ^= 0xff;
    writeFileSync(bad, bytes);
    const r = runner(['receive'], env);
    expect(r.status).toBe(5);
    expect(r.stderr).toContain(`${parts[1].name}: FAILED`);
    expect(r.stderr).toMatch(/kit folder cuda: a file is missing or corrupt/);
    expect(existsSync(join(env.SPECSERVE_GPU_HOME, 'kit', parts[1].name))).toBe(false);
  });

  it('names a part that has not arrived when asked to join', () => {
    const root = scratchDir('gpu-kit');
    const { folder, parts, env } = kitWithParts(root, randomBytes(50_000), 20_000);
    // As if the part travelled in a later call: not in this folder's checksums either.
    const sums = parseSha256sums(readFileSync(join(folder, 'SHA256SUMS'), 'utf8')).filter((e) => e.name !== parts[2].name);
    writeFileSync(join(folder, 'SHA256SUMS'), sha256sums(sums));
    expect(runner(['receive'], env).status).toBe(0);
    const r = runner(['join', 'provider.xz'], env);
    expect(r.status).toBe(5);
    expect(r.stderr).toContain(`provider.xz: part ${parts[2].name} has not arrived`);
  });

  it('says what to do when no kit has arrived', () => {
    const root = scratchDir('gpu-kit');
    const r = runner(['receive'], { SPECSERVE_GPU_KIT: join(root, 'none'), SPECSERVE_GPU_HOME: join(root, 'home') });
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/no kit under .*: build it with npm run gpu:kit/);
  });
});

describe('the runner on a machine without a GPU', () => {
  it('prints its usage for an unknown stage (status 2)', () => {
    const r = runner(['bogus'], {});
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/receive .*\n[\s\S]*prepare[\s\S]*run[\s\S]*Exit status: 2 usage, 3 no GPU/);
  });

  it('refuses to run without a GPU, saying so (status 3)', () => {
    const r = runner(['check-gpu'], { SPECSERVE_NVIDIA_SMI: '/nonexistent/nvidia-smi', SPECSERVE_NVIDIA_DEVICE: '/nonexistent/nvidia0' });
    expect(r.status).toBe(3);
    expect(r.stderr).toBe('gpu runner: no NVIDIA GPU: nvidia-smi -L lists none and /nonexistent/nvidia0 is absent\n');
  });

  it('names every CUDA library the provider needs that it cannot find (status 4), and passes once they are there', () => {
    const libs = scratchDir('gpu-libs');
    const env = { SPECSERVE_CUDA_LIBRARY_PATH: libs, SPECSERVE_LDCONFIG: 'false' };
    const missing = runner(['check-libs'], env);
    expect(missing.status).toBe(4);
    expect(missing.stderr).toMatch(/the CUDA provider cannot load: libcublasLt.so.13 libcublas.so.13 libcurand.so.10 libcudart.so.13 libcuda.so.1 not found/);
    for (const lib of ['libcublasLt.so.13', 'libcublas.so.13', 'libcurand.so.10', 'libcudart.so.13']) writeFileSync(join(libs, lib), '');
    expect(runner(['check-libs'], env).stderr).toMatch(/cannot load: libcuda.so.1 not found/);
    writeFileSync(join(libs, 'libcuda.so.1'), '');
    const ok = runner(['check-libs'], env);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('warning: libcudnn.so.9 not found');
  });
});

/** A minimal little-endian ELF64 with a .nv_fatbin section holding `containers` (each a list of [kind, arch, payload]). */
function syntheticCudaLibrary(containers: [number, number, Buffer][][]): Buffer {
  const blobs = containers.map((entries) => {
    const body = Buffer.concat(entries.map(([kind, arch, payload]) => {
      const header = Buffer.alloc(64);
      header.writeUInt16LE(kind, 0);
      header.writeUInt32LE(64, 4);
      header.writeBigUInt64LE(BigInt(payload.length), 8);
      header.writeUInt32LE(arch, 28);
      return Buffer.concat([header, payload]);
    }));
    const head = Buffer.alloc(16);
    head.writeUInt32LE(0xba55ed50, 0);
    head.writeUInt16LE(1, 4);
    head.writeUInt16LE(16, 6);
    head.writeBigUInt64LE(BigInt(body.length), 8);
    return Buffer.concat([head, body]);
  });
  const fatbin = Buffer.concat(blobs);
  const names = Buffer.from('\0.shstrtab\0.nv_fatbin\0');
  const fatbinAt = 64;
  const namesAt = fatbinAt + fatbin.length;
  const shoff = namesAt + names.length;
  const section = (name: number, offset: number, size: number) => {
    const s = Buffer.alloc(64);
    s.writeUInt32LE(name, 0);
    s.writeBigUInt64LE(BigInt(offset), 24);
    s.writeBigUInt64LE(BigInt(size), 32);
    return s;
  };
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2;
  header[5] = 1;
  header.writeBigUInt64LE(BigInt(shoff), 0x28);
  header.writeUInt16LE(64, 0x3a);
  header.writeUInt16LE(3, 0x3c);
  header.writeUInt16LE(1, 0x3e);
  return Buffer.concat([header, fatbin, names, section(0, 0, 0), section(1, namesAt, names.length), section(11, fatbinAt, fatbin.length)]);
}

describe('fatbin trimming', () => {
  const fill = (n: number, v: number) => Buffer.alloc(n, v);

  it('zeroes other architectures\' machine code, keeps Hopper\'s and PTX, and leaves a container without Hopper code whole', () => {
    const lib = syntheticCudaLibrary([
      [[2, 80, fill(100, 1)], [2, 90, fill(200, 2)], [1, 90, fill(50, 3)], [2, 120, fill(300, 4)]],
      [[2, 75, fill(40, 5)]],
    ]);
    const before = Buffer.from(lib);
    expect(elfSections(lib).map((s) => s.name)).toEqual(['', '.shstrtab', '.nv_fatbin']);
    const entries = fatbinEntries(lib, elfSections(lib)[2]);
    expect(entries.map((e) => [e.container, e.kind, e.arch, e.payloadSize])).toEqual([
      [0, 'elf', 80, 100], [0, 'elf', 90, 200], [0, 'ptx', 90, 50], [0, 'elf', 120, 300], [1, 'elf', 75, 40],
    ]);
    const report = keepOnlyArch(lib, 90);
    expect(report).toMatchObject({ zeroedBytes: 400, containers: 2, containersWithoutArch: 1 });
    expect(lib.length).toBe(before.length);
    const payload = (i: number) => lib.subarray(entries[i].payloadOffset, entries[i].payloadOffset + entries[i].payloadSize);
    expect(payload(0).every((b) => b === 0)).toBe(true);
    expect(payload(1).every((b) => b === 2)).toBe(true);
    expect(payload(2).every((b) => b === 3)).toBe(true);
    expect(payload(3).every((b) => b === 0)).toBe(true);
    expect(payload(4).every((b) => b === 5)).toBe(true);
    // Headers and everything outside the zeroed payloads are untouched.
    let changed = 0;
    for (let i = 0; i < lib.length; i++) if (lib[i] !== before[i]) changed++;
    expect(changed).toBe(400);
  });

  it('refuses files that are not CUDA libraries', () => {
    expect(() => keepOnlyArch(Buffer.from('#!/bin/sh\n'.padEnd(80)), 90)).toThrow(/not an ELF file/);
    const noFatbin = syntheticCudaLibrary([]);
    // rename the section so that it is not found
    noFatbin.write('.nv_other', noFatbin.indexOf('.nv_fatbin'));
    expect(() => keepOnlyArch(noFatbin, 90)).toThrow(/no \.nv_fatbin section/);
  });
});
