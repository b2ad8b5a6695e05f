// XGrammar (mlc-ai's official WebAssembly build, @mlc-ai/web-xgrammar) loaded for Node. Its bundle is a UMD file in
// an ESM package: as an ES module it would find no `exports` and put itself on globalThis.xgrammar, and its Emscripten
// loader wants CommonJS's `require`, `__filename` and `__dirname`. So the file is run here as CommonJS is, in a
// function that hands it those five names: its exports land on a local object and nothing lands on globalThis.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type * as XGrammar from '@mlc-ai/web-xgrammar';

export type { CompiledGrammar, GrammarCompiler, GrammarMatcher, TokenizerInfo } from '@mlc-ai/web-xgrammar';
export type XGrammarModule = typeof XGrammar;

let loaded: XGrammarModule | null = null;

/** The XGrammar module; the WebAssembly itself starts on the first call that needs it. */
export function loadXGrammar(): XGrammarModule {
  if (loaded) return loaded;
  let file: string;
  try {
    file = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
  } catch (err) {
    throw new Error(`structured output needs @mlc-ai/web-xgrammar, which is not installed (${(err as Error).message})`);
  }
  const module = { exports: {} as Record<string, unknown> };
  try {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- running a CommonJS file is what this module is for
    new Function('exports', 'module', 'require', '__filename', '__dirname', readFileSync(file, 'utf8'))(
      module.exports, module, createRequire(file), file, dirname(file));
  } catch (err) {
    throw new Error(`could not load XGrammar from ${file}: ${(err as Error).message}`);
  }
  if (typeof module.exports.GrammarCompiler !== 'function') throw new Error(`${file} did not export XGrammar's GrammarCompiler`);
  return (loaded = module.exports as unknown as XGrammarModule);
}
