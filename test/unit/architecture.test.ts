// The house rules a reader relies on: no source file over 300 lines, and no `any` in src/ (the layers themselves are
// checked by dependency-cruiser in `npm test`).
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const SRC = resolve(import.meta.dirname, '../../src');
const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => {
  const path = join(dir, f);
  return statSync(path).isDirectory() ? files(path) : f.endsWith('.ts') ? [path] : [];
});

describe('src/', () => {
  it('has no file over 300 lines', () => {
    const long = files(SRC).map((f) => [relative(SRC, f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 300);
    expect(long).toEqual([]);
  });

  it('has no explicit any', () => {
    const code = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '').replace(/'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`/g, "''");
    const found = files(SRC).flatMap((f) => code(readFileSync(f, 'utf8')).split('\n').map((line, i) => [relative(SRC, f), i + 1, line] as const))
      .filter(([, , line]) => /(:\s*any\b|\bas any\b|<any\b|\bany\[\]|,\s*any\s*>)/.test(line));
    expect(found).toEqual([]);
  });
});
