// Writes a model folder in the Hugging Face / onnx-community layout, all or nothing: everything goes to a sibling
// temporary folder that is renamed into place at the end, so a failure never leaves a half-written folder.
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { FileChunks } from '../onnx/external-data.ts';

export interface FolderFiles {
  /** Relative path -> contents (JSON values are pretty-printed; chunks are written in order). */
  [relativePath: string]: Uint8Array | FileChunks | Record<string, unknown>;
}

export function assertOutputFree(out: string): void {
  if (existsSync(out)) throw new Error(`output folder ${out} already exists; remove it or choose another --out`);
}

export function writeModelFolder(out: string, files: FolderFiles): void {
  assertOutputFree(out);
  const staging = join(dirname(out), `.${basename(out)}.partial-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  try {
    for (const [rel, contents] of Object.entries(files)) {
      const path = join(staging, rel);
      mkdirSync(dirname(path), { recursive: true });
      if (contents instanceof FileChunks) writeChunks(path, contents);
      else writeFileSync(path, contents instanceof Uint8Array ? contents : JSON.stringify(contents, null, 2) + '\n');
    }
    mkdirSync(dirname(out), { recursive: true });
    renameSync(staging, out);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/** Adds files to an existing folder atomically per file (write to a temporary name, then rename). */
export function addFileAtomically(path: string, contents: Uint8Array | FileChunks): void {
  const tmp = `${path}.partial-${process.pid}`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    if (contents instanceof FileChunks) writeChunks(tmp, contents);
    else writeFileSync(tmp, contents);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function writeChunks(path: string, contents: FileChunks): void {
  const fd = openSync(path, 'w');
  try {
    for (const chunk of contents.chunks) {
      for (let done = 0; done < chunk.byteLength;) done += writeSync(fd, chunk, done);
    }
  } finally {
    closeSync(fd);
  }
}
