// The house rules a reader relies on: no source file over 300 lines, no `any` in src/, a design document that code
// comments can point to, and a BENCHMARKS.md that stays a page of current tables (the layers themselves are checked by
// dependency-cruiser in `npm test`).
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const SRC = join(ROOT, 'src');
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

describe('the documents', () => {
  const design = readFileSync(join(ROOT, 'docs/design.md'), 'utf8');

  it('docs/design.md is short enough to read, and every section a comment names exists', () => {
    expect(design.split('\n').length).toBeLessThanOrEqual(300);
    const headings = new Set([...design.matchAll(/^##+ (.+)$/gm)].map((m) => m[1].trim()));
    const named = files(SRC).flatMap((f) => [...readFileSync(f, 'utf8').replace(/\n\s*(\/\/|\*)\s*/g, ' ')
      .matchAll(/design\.md, "([^"]+)"/g)].map((m) => [relative(SRC, f), m[1]] as const));
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter(([, section]) => !headings.has(section))).toEqual([]);
  });

  it('BENCHMARKS.md holds current tables, not a lab notebook', () => {
    expect(readFileSync(join(ROOT, 'BENCHMARKS.md'), 'utf8').split('\n').length).toBeLessThanOrEqual(260);
  });
});
