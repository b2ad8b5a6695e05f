// Real trained models in ../shared/models (read-only). Tests that need them fail where the folder is missing.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { tmpdir } from 'node:os';

export const SHARED_MODELS = resolve(import.meta.dirname, '../../../shared/models');

export const stories = {
  checkpoint: join(SHARED_MODELS, 'stories260K/stories260K.bin'),
  tokenizer: join(SHARED_MODELS, 'stories260K/tok512.bin'),
  draftCheckpoint: join(SHARED_MODELS, 'stories260K-draft/stories260K-draft.bin'),
  aidreams: join(SHARED_MODELS, 'aidreams260K/aidreams260K.bin'),
  aidreamsTokenizer: join(SHARED_MODELS, 'aidreams260K/tok512.bin'),
};

/** Checks that ../shared/models is present, for a suite that needs it: a missing folder fails the suite (CI always has
 * it; a silent skip would pass a run that tested nothing). */
export function requireSharedModels(suite: string): true {
  if (!existsSync(stories.checkpoint) || !existsSync(stories.tokenizer)) {
    throw new Error(`${suite}: ${SHARED_MODELS} is missing; the real trained models this suite needs live there (../shared/models)`);
  }
  return true;
}

/** Greedy ids from BOS listed in ../shared/models/stories260K/PROVENANCE.md. */
export const STORIES_ORACLE_IDS = (
  '403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 ' +
  '426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 266 267 337 335 312 432 398 312 286 267 414 270 333 415 ' +
  '426 13 438 310'
).split(' ').map(Number);

const scratchDirs: string[] = [];

/** A fresh temporary folder, removed after the test file (test/setup.ts). */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `specserve-${prefix}-`));
  scratchDirs.push(dir);
  return dir;
}

export function removeScratchDirs(): void {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
