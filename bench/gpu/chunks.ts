// Files split into parts small enough to travel (the GPU machine receives at most 64 MiB per call), with SHA-256
// checksums in `sha256sum` format, so that the runner there can check them with coreutils before Node is unpacked.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(8 << 20);
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

export interface Part {
  name: string;
  bytes: number;
  sha256: string;
}

/** Splits `path` into `name.part-000`, `name.part-001`, ... of at most `maxBytes` each, written to the folders that
 * `dirFor(i)` names (one call's worth each). Returns the parts in order. */
export function splitFile(path: string, maxBytes: number, dirFor: (index: number) => string, name = basename(path)): Part[] {
  if (!(maxBytes > 0)) throw new Error(`splitFile: part size must be positive, got ${maxBytes}`);
  const total = statSync(path).size;
  const parts: Part[] = [];
  const fd = openSync(path, 'r');
  try {
    for (let offset = 0, index = 0; offset < total || index === 0; index++) {
      const size = Math.min(maxBytes, total - offset);
      const buf = Buffer.allocUnsafe(size);
      for (let done = 0; done < size;) done += readSync(fd, buf, done, size - done, offset + done);
      const partName = `${name}.part-${String(index).padStart(3, '0')}`;
      writeFileSync(join(dirFor(index), partName), buf);
      parts.push({ name: partName, bytes: size, sha256: sha256(buf) });
      offset += size;
    }
  } finally {
    closeSync(fd);
  }
  return parts;
}

/** `sha256sum -c` input for files in one folder. */
export function sha256sums(entries: { name: string; sha256: string }[]): string {
  return entries.map((e) => `${e.sha256}  ${e.name}\n`).join('');
}

export function parseSha256sums(text: string): { name: string; sha256: string }[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((line) => {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (!m) throw new Error(`not a sha256sum line: "${line}"`);
    return { sha256: m[1], name: m[2] };
  });
}

/** A `JOINS` line: the whole file's checksum, its name, and its parts in order (the runner joins them with cat). */
export function joinLine(output: string, wholeSha256: string, parts: Part[]): string {
  return `${wholeSha256}  ${output}  ${parts.map((p) => p.name).join(' ')}\n`;
}
