#!/usr/bin/env node
// The `specserve` command: the CLI lives in src/cli.ts, loaded through tsx so that no build step is needed.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
