// Builds the live view's page (web/) into dist/web/ with esbuild: one app.js (Preact, htm, uPlot
// and the page's code), one app.css, and index.html. Nothing is fetched at run time.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/web');
fs.mkdirSync(out, { recursive: true });
await build({
  entryPoints: [path.join(root, 'web/app.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  outfile: path.join(out, 'app.js'),
  logLevel: 'warning',
  legalComments: 'linked',
});
fs.copyFileSync(path.join(root, 'web/index.html'), path.join(out, 'index.html'));
