// The layers of src/, as the developers' guide names them: imports only go down,
//   cli (src/cli.ts, src/demo-models.ts) > server > speculative > runtime > quant, forge > onnx
// (a layer may import any layer below it; forge may use quant for the variants it writes). Checked in `npm test`.
const layer = (name, mayImport) => ({
  name: `${name}-imports-only-down`,
  comment: `src/${name} may import only ${mayImport.join(', ') || 'nothing in src'} (and itself)`,
  severity: 'error',
  from: { path: `^src/${name}/` },
  to: { path: '^src/', pathNot: [`^src/${name}/`, ...mayImport.map((l) => `^src/${l}/`)] },
});

module.exports = {
  forbidden: [
    layer('server', ['speculative', 'runtime', 'quant', 'forge', 'onnx']),
    layer('speculative', ['runtime', 'quant', 'forge', 'onnx']),
    layer('runtime', ['quant', 'forge', 'onnx']),
    layer('forge', ['quant', 'onnx']),
    layer('quant', ['onnx']),
    layer('onnx', []),
    { name: 'no-circular', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
    {
      name: 'no-test-code-in-src', severity: 'error', from: { path: '^src/' }, to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
