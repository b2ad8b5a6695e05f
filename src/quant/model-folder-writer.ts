// Writes a model folder in the Hugging Face / onnx-community layout, all or nothing: everything goes to a sibling
// temporary folder that is renamed into place at the end, so a failure never leaves a half-written folder.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

export interface FolderFiles {
  /** Relative path -> contents (JSON values are pretty-printed). */
  [relativePath: string]: Uint8Array | Record<string, unknown>;
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
      writeFileSync(path, contents instanceof Uint8Array ? contents : JSON.stringify(contents, null, 2) + '\n');
    }
    mkdirSync(dirname(out), { recursive: true });
    renameSync(staging, out);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/** Adds files to an existing folder atomically per file (write to a temporary name, then rename). */
export function addFileAtomically(path: string, contents: Uint8Array): void {
  const tmp = `${path}.partial-${process.pid}`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(tmp, contents);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
