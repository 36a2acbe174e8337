// The package as npm would publish it: `npm pack`, then an install of the tarball into an empty
// folder, where `npx poplar` and `npx poplarctl` work: --version, hash-password, and the demo server
// read with curl. The tarball holds no test file, a LICENSE, the docs the README links to, and the
// sources its source maps point at.
//
// The install runs offline. Its dependencies come from the npm cache that `npm ci` filled for this
// clone, at the versions of the project's lock: the test writes the empty folder a lock made of the
// project's runtime entries, so that `npm ci --offline` needs no registry metadata.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { requireBinary } from '../interop/require-binary.js';
import { tempDir } from '../helpers/temp-dir.js';
import { childEnv, exitOf, killGroup, projectRoot, watchLogs } from './project.js';

const run = promisify(execFile);

interface Manifest {
  readonly name: string;
  readonly version: string;
  readonly bin: Record<string, string>;
  readonly dependencies: Record<string, string>;
  readonly engines: Record<string, string>;
  readonly license: string;
}

interface LockEntry {
  readonly dev?: boolean;
  readonly [field: string]: unknown;
}

interface PackResult {
  readonly filename: string;
  readonly files: readonly { readonly path: string }[];
}

/** A lock for a folder whose one dependency is the tarball, with the project's runtime entries. */
async function lockFor(
  root: string,
  manifest: Manifest,
  tarball: string,
  integrity: string,
): Promise<string> {
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const packages: Record<string, unknown> = {
    '': { name: 'app', version: '1.0.0', dependencies: { [manifest.name]: `file:${tarball}` } },
    [`node_modules/${manifest.name}`]: {
      version: manifest.version,
      resolved: `file:${tarball}`,
      integrity,
      license: manifest.license,
      dependencies: manifest.dependencies,
      bin: manifest.bin,
      engines: manifest.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path.startsWith('node_modules/') && entry.dev !== true) packages[path] = entry;
  }
  return JSON.stringify({ name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages });
}

test(
  'npm pack, then install the tarball into an empty folder and run npx poplar there',
  { timeout: 240_000 },
  async (t) => {
    const curl = await requireBinary(t, 'curl');
    if (curl === undefined) return;
    const root = projectRoot();
    const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Manifest;
    const app = await tempDir(t, 'poplar-app-');
    const env = childEnv();

    // --ignore-scripts: the prepack build must not run under the suite (build/ is current: npm test built it).
    const { stdout: packed } = await run(
      'npm',
      ['pack', '--json', '--ignore-scripts', '--pack-destination', app],
      { cwd: root, env, maxBuffer: 64 * 1024 * 1024 },
    );
    const [pack] = JSON.parse(packed) as PackResult[];
    assert.ok(pack !== undefined);
    const files = new Set(pack.files.map((f) => f.path));
    const tests = [...files].filter((f) => /(^|\/)test\/|\.test\.|(^|\/)scripts\//.test(f));
    assert.deepEqual(tests, [], 'test files or scripts in the package');
    for (const needed of [
      'LICENSE',
      'README.md',
      'SECURITY.md',
      'docs/architecture.md',
      'docs/deploy.md',
      'docs/configuration.md',
      'poplar.example.toml',
      'deploy/poplar.service',
      'bin/poplar.js',
      'build/src/index.js',
      'build/src/index.d.ts',
      'build/src/dashboard/web/index.html',
      'build/src/dashboard/web/dashboard.css',
      'build/src/dashboard/web/dashboard.js',
    ]) {
      assert.ok(files.has(needed), `${needed} is not in the package`);
    }
    // Every source map's sources are in the package too.
    for (const map of [...files].filter((f) => f.endsWith('.js.map'))) {
      const { sources } = JSON.parse(await readFile(join(root, map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const path = normalize(join(dirname(map), source));
        assert.ok(files.has(path), `${map} points at ${path}, which is not in the package`);
      }
    }
    // Every relative link of the README leads to a file of the package.
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    for (const [, link] of readme.matchAll(/\]\(((?!https?:|#)[^)#\s]+)/g)) {
      assert.ok(
        link !== undefined && files.has(normalize(link)),
        `README links ${String(link)}, not in the package`,
      );
    }

    const tarball = join(app, pack.filename);
    const integrity = `sha512-${createHash('sha512')
      .update(await readFile(tarball))
      .digest('base64')}`;
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'app',
        version: '1.0.0',
        private: true,
        dependencies: { [manifest.name]: `file:${pack.filename}` },
      }),
    );
    await writeFile(join(app, 'package-lock.json'), await lockFor(root, manifest, pack.filename, integrity));
    await run('npm', ['ci', '--offline', '--omit=dev', '--no-audit', '--no-fund'], { cwd: app, env }).catch(
      (error: unknown) => {
        // ENOTCACHED: a dependency is not in npm's cache, which `npm ci` in this clone (.ci/run's) fills.
        throw new Error('the offline install failed: run `npm ci` in the clone first to fill the npm cache', {
          cause: error,
        });
      },
    );

    // From another folder, with --prefix naming the one it was installed in.
    const elsewhere = await tempDir(t, 'poplar-elsewhere-');
    const npx = (args: string[], input?: string) => {
      const child = execFile('npx', ['--offline', '--prefix', app, ...args], { cwd: elsewhere, env });
      child.stdin?.end(input ?? '');
      return child;
    };
    const { stdout: version } = await run('npx', ['--offline', 'poplar', '--version'], { cwd: app, env });
    assert.equal(version, `poplar ${manifest.version}\n`);
    const hashing = npx(['poplar', 'hash-password', '--user', 'alice'], 'a long password');
    let hashed = '';
    hashing.stdout?.on('data', (chunk: Buffer) => (hashed += chunk.toString()));
    assert.deepEqual(await exitOf(hashing), { code: 0, signal: null });
    assert.match(hashed, /^alice:\{PBKDF2\}\S+\n$/);

    // The demo, started with npx in the app folder, read with curl and asked with poplarctl.
    const server = spawn(
      'npx',
      [
        '--offline',
        'poplar',
        '-p',
        '0',
        '--monitor-port',
        '0',
        '--workers',
        '1',
        '--metrics-listen',
        '127.0.0.1:0',
      ],
      {
        cwd: app,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // a process group of its own, killed whole if the test fails
      },
    );
    const serverExit = exitOf(server);
    const logs = watchLogs(server);
    t.after(async () => {
      killGroup(server.pid);
      await serverExit;
    });
    const started = await logs.waitFor((e) => e['msg'] === 'poplar started');
    const serverPid = started['pid'] as number;
    const port = (started['addresses'] as { port: number }[])[0]?.port ?? 0;
    const monitorPort = (started['monitor'] as { port: number }[])[0]?.port ?? 0;
    const { stdout: message } = await run(curl, ['-sS', `pop3://foo:bar@127.0.0.1:${String(port)}/1`]);
    assert.match(message, /^Subject: /m);
    const { stdout: ctl } = await run(
      'npx',
      ['--offline', 'poplarctl', '--port', String(monitorPort), '-C', '123456789abcdef1'],
      { cwd: app, env },
    );
    assert.equal(ctl, 'historic connections: 1\n');
    // The dashboard's page and uPlot, served from the installed package.
    const dashboard = await logs.waitFor((e) => e['msg'] === 'metrics listening');
    for (const path of ['/', '/dashboard.js', '/uplot.js']) {
      const { stdout: status }: { stdout: string } = await run(curl, [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-u',
        'root:123456789abcdef1',
        `http://127.0.0.1:${String(dashboard['port'])}${path}`,
      ]);
      assert.equal(status, '200', path);
    }
    // SIGTERM to npx's PID, as an operator sends it: npx and its `sh -c` end without passing it on,
    // and the server, having lost its parent, stops cleanly rather than serving on as an orphan.
    const outputClosed = new Promise((resolve) => server.stdout.once('close', resolve));
    process.kill(server.pid ?? 0, 'SIGTERM');
    await serverExit;
    const stopping = await logs.waitFor((e) => e['msg'] === 'shutting down');
    assert.equal(stopping['pid'], serverPid, logs.output());
    assert.equal(stopping['signal'], 'parent exited');
    await logs.waitFor((e) => e['msg'] === 'stopped' && e['pid'] === serverPid);
    await outputClosed; // the server, the last process writing to the pipe, has exited
  },
);
