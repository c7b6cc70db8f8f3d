// Layer rules (issue 12; DESIGN.md, "Layers"): imports point down only.
//
//   engine/ (domain) <- actors/ (runtime) <- facade/ <- transports/ <- cli/, index.ts, server.ts
//   native/ (the codec addon's binding) stands on engine/ only and serves every layer above it;
//   servables/*.ts (model generators) stand on engine/ only;
//   perf/ and test/ may import anything.
//
// Type-only imports count (tsPreCompilationDeps): layering is about what a module knows, not
// only what it loads. `npm run lint` runs it (`depcruise --config .dependency-cruiser.cjs .`);
// test/lint/layers.test.ts shows that each rule fails on a violating tree.

/** Our top-level folders and the package entry (dist/ is the compiled tree the tests import). */
const TOP = '(index\\.ts$|server\\.ts$|engine/|actors/|facade/|transports/|cli/|native/|servables/|perf/|test/|dist/)';
const OURS = `^${TOP}`;
/** Any of our modules outside the given path prefixes. */
const oursExcept = (...allowed) => `^(?!(${allowed.join('|')}))${TOP}`;

/** Product code: what ships (not tests, benchmarks or the build output). */
const PRODUCT = '^(index\\.ts$|server\\.ts$|engine/|actors/|facade/|transports/|cli/|native/|servables/)';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle ties its modules into one: none is allowed, type-only ones included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'engine-is-the-domain',
      comment: 'engine/ (tensors, dtypes, register, errors, start config) imports nothing of ours but engine/.',
      severity: 'error',
      from: { path: '^engine/' },
      to: { path: oursExcept('engine/') },
    },
    {
      name: 'actors-below-facade',
      comment: 'actors/ (the runtime) may import engine/ and native/ only.',
      severity: 'error',
      from: { path: '^actors/' },
      to: { path: oursExcept('engine/', 'actors/', 'native/') },
    },
    {
      name: 'facade-below-transports',
      comment: 'facade/ (ServingEngine) composes the runtime; it imports no transport and nothing above.',
      severity: 'error',
      from: { path: '^facade/' },
      to: { path: oursExcept('engine/', 'actors/', 'native/', 'facade/') },
    },
    {
      name: 'transports-not-actors',
      comment: 'Transports reach the runtime through the facade only: no import of actors/.',
      severity: 'error',
      from: { path: '^transports/' },
      to: { path: '^actors/' },
    },
    {
      name: 'transports-below-cli',
      comment: 'transports/ imports the facade, engine/ and native/, never cli/ or the package entry.',
      severity: 'error',
      from: { path: '^transports/' },
      to: { path: oursExcept('engine/', 'actors/', 'native/', 'facade/', 'transports/') },
    },
    {
      name: 'native-on-engine',
      comment: 'native/ is a library above the domain: its binding imports engine/ and native/ only.',
      severity: 'error',
      from: { path: '^native/' },
      to: { path: oursExcept('engine/', 'native/') },
    },
    {
      name: 'model-generators-on-engine',
      comment: 'servables/*.ts (the ONNX model generators) may import engine/ and each other only.',
      severity: 'error',
      from: { path: '^servables/[^/]+\\.ts$' },
      to: { path: oursExcept('engine/', 'servables/[^/]+\\.ts$') },
    },
    {
      name: 'product-not-tests-or-build',
      comment: 'Product code never imports test/, perf/ or the compiled dist/ tree.',
      severity: 'error',
      from: { path: PRODUCT },
      to: { path: '^(test|perf|dist)/' },
    },
  ],
  options: {
    // Cruise our folders (facade/ included once it exists); dist/ is a leaf target only.
    includeOnly: OURS,
    // What .gitignore ignores besides dist/: build output, test fixtures and run output.
    exclude: { path: '^(native/build|test/\\.tmp|\\.tap|perf/out|tmpexp)/' },
    doNotFollow: { path: ['node_modules', '^dist/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.lint.json' },
    enhancedResolveOptions: {
      extensions: ['.ts', '.js', '.d.ts', '.json'],
      conditionNames: ['import', 'types', 'node', 'default'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
