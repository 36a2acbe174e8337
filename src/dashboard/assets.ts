import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

/** One file of the page, held in memory with its gzip form (the page is a few small files). */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzipped: Buffer;
  readonly etag: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

/** A URL path the page may ask for: `/name.js` or `/name.css`, flat, lowercase. */
const ASSET_PATH = /^\/[a-z0-9-]+\.(?:js|css)$/;

function asset(name: string, body: Buffer): Asset {
  const type = TYPES[extname(name)] ?? 'application/octet-stream';
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { type, body, gzipped: gzipSync(body, { level: 9 }), etag };
}

/** The folder of the built page: `web/` beside this module (build/src/dashboard/web). */
export const WEB_FOLDER = fileURLToPath(new URL('./web/', import.meta.url));

/**
 * The page's files, by URL path: `/` (index.html), every `.js` and `.css` of the built page's
 * folder, and uPlot's script and style sheet as `/uplot.js` and `/uplot.css`. Read once, at start.
 * Rejects when the page was not built (index.html missing).
 */
export async function loadAssets(folder: string = WEB_FOLDER): Promise<ReadonlyMap<string, Asset>> {
  const assets = new Map<string, Asset>();
  assets.set('/', asset('index.html', await readFile(join(folder, 'index.html'))));
  for (const name of await readdir(folder)) {
    const path = `/${name}`;
    if (ASSET_PATH.test(path) && path !== '/uplot.js' && path !== '/uplot.css')
      assets.set(path, asset(name, await readFile(join(folder, name))));
  }
  const require = createRequire(import.meta.url);
  for (const [path, file] of [
    ['/uplot.js', 'uplot/dist/uPlot.iife.min.js'],
    ['/uplot.css', 'uplot/dist/uPlot.min.css'],
  ] as const)
    assets.set(path, asset(path, await readFile(require.resolve(file))));
  return assets;
}
