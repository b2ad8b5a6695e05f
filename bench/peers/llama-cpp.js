// Resolved from here, so that the benches get bench/peers/node_modules' copy (bench/peers.ts loads this file).
export * from 'node-llama-cpp';
