// Every test file: its temporary folders are removed once its own afterAll hooks (servers, sessions) have run, which
// vitest runs before this one (hooks run in reverse order of registration).
import { afterAll } from 'vitest';
import { removeScratchDirs } from './helpers/shared-models.ts';

afterAll(removeScratchDirs);
