// The layers of src/ (docs/development.md "Layers"), checked by `make depcheck` and before
// `make test`:
//
//   cli -> agent -> policy, profiles, emulation, bus, store -> datapath -> (the native addon)
//   lab: a leaf, used by cli (and by tests and benchmarks)
//
// An area is a folder directly under src/. Arrows point down: an area may import the areas of
// the levels below its own (and those beside it on its level, as long as no cycle forms), never
// one above. src/errors.ts, src/json.ts and src/log.ts are shared by every area and import
// none. A module outside an area reaches it only through its index.ts. test/ and bench/ may
// import any module of src/; only the cycle rule applies to them.
//
// A new area is refused until it has a level here (rule `known-area`). store/ (the SQLite store,
// pcapng) sits beside policy, profiles, emulation and bus: agent and cli use it; it uses datapath
// at most.

/** From the top down; an area may import the areas of the levels below its own. */
const LEVELS = [
  ['cli'],
  ['agent'],
  // web (the live view) and scenario (record, replay) import no agent; the CLI wires them in.
  ['web', 'scenario'],
  // reconstruct (capture, re-injection) is beside policy and imports it (names, actions).
  ['policy', 'profiles', 'emulation', 'bus', 'reconstruct', 'store'],
  ['datapath'],
];
/** Areas outside the levels: used only by cli (and tests), import no other area. */
const LEAVES = ['lab'];

const AREAS = [...LEVELS.flat(), ...LEAVES];
const any = (areas) => `^src/(${areas.join('|')})/`;

/** One rule per level: nothing at it or below imports an area above it (or a leaf, but cli). */
const layerRules = LEVELS.slice(1).map((level, i) => ({
  name: `layer-${level.join('-')}`,
  severity: 'error',
  comment: `${level.join(', ')} must not import ${[...LEVELS.slice(0, i + 1).flat(), ...LEAVES].join(', ')} (an arrow of the layer diagram points down only)`,
  from: { path: any(level) },
  to: { path: any([...LEVELS.slice(0, i + 1).flat(), ...LEAVES]) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'a module must not depend on itself through others (type-only imports count: they couple as much)',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'leaf-imports-no-area',
      severity: 'error',
      comment: `${LEAVES.join(', ')} import no other area (src/errors.ts, src/json.ts and src/log.ts are fine)`,
      from: { path: any(LEAVES) },
      to: { path: '^src/[^/]+/', pathNot: '^src/$1/' },
    },
    {
      name: 'leaf-used-by-cli-only',
      severity: 'error',
      comment: `only cli (and test/, bench/) imports ${LEAVES.join(', ')}`,
      from: { path: '^src/', pathNot: any(['cli', ...LEAVES]) },
      to: { path: any(LEAVES) },
    },
    {
      name: 'through-the-index',
      severity: 'error',
      comment: 'a module outside an area imports it only through its index.ts (what the area offers, nothing more)',
      from: { path: '^src/([^/]+)/' },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', '^src/[^/]+/index\\.ts$'] },
    },
    {
      name: 'shared-modules-import-no-area',
      severity: 'error',
      comment: 'src/errors.ts, src/json.ts and src/log.ts are used by every area and import none',
      from: { path: '^src/[^/]+\\.ts$' },
      to: { path: '^src/[^/]+/' },
    },
    {
      name: 'known-area',
      severity: 'error',
      comment: `every folder under src/ is an area with a level in .dependency-cruiser.cjs (known: ${AREAS.join(', ')})`,
      from: {},
      to: { path: '^src/[^/]+/', pathNot: any(AREAS) },
    },
    {
      name: 'src-not-to-test-or-bench',
      severity: 'error',
      comment: 'src/ is what ships: it imports nothing of test/ or bench/',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'src-not-to-dev-dependency',
      severity: 'error',
      comment: 'src/ runs without devDependencies (npm ci --omit=dev)',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'an import that resolves to no file',
      from: {},
      // cli/main.ts reads the version from package.json by its path from dist/src/cli/.
      to: { couldNotResolve: true, pathNot: '^(\\.\\./)+package\\.json$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|build|node_modules)/' },
    // Type-only imports are dependencies too: they count for cycles and layers.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
