// poplar.example.toml and the table of docs/configuration.md against the config parser: every key
// the parser takes is in both (and nothing else is); the example parses, and its lines that are not
// commented out are the defaults; the table's defaults are the parser's, its flags are poplar's,
// and its SIGHUP column says what a reload really takes (compareConfigs).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { compareConfigs } from '../../src/cli/reload.js';
import { layerFromToml, resolveConfig, TOP_KEYS, type DaemonConfig } from '../../src/config/config.js';
import { OAUTH_KEYS } from '../../src/config/oauth.js';
import { POLICY_TOML_KEYS } from '../../src/config/policy.js';
import { USERDB_KEYS } from '../../src/config/scale-out.js';
import { DEFAULT_LIMITS } from '../../src/pop3/limits.js';
import { projectRoot } from './project.js';

const run = promisify(execFile);
const TABLES = new Set(['limits', 'oauth', 'sni', 'userdb', 'policy']);

/** Every key the parser takes, dotted for the tables' keys. */
function parserKeys(): string[] {
  return [
    ...TOP_KEYS.filter((k) => !TABLES.has(k)),
    ...Object.keys(DEFAULT_LIMITS).map((k) => `limits.${k}`),
    ...OAUTH_KEYS.map((k) => `oauth.${k}`),
    ...USERDB_KEYS.map((k) => `userdb.${k}`),
    ...POLICY_TOML_KEYS.map((k) => `policy.${k}`),
    'sni."NAME".cert',
    'sni."NAME".key',
  ];
}

/** `sni."pop.example.net".cert` → `sni."NAME".cert`. */
const generic = (key: string): string => key.replace(/^sni\."[^"]*"/, 'sni."NAME"');

interface Example {
  /** Keys set on lines that are not commented out. */
  readonly active: Set<string>;
  /** Keys of commented-out `# key = value` lines, with their value's text. */
  readonly commented: Map<string, string>;
  readonly doc: Record<string, unknown>;
}

async function readExample(): Promise<Example> {
  const text = await readFile(join(projectRoot(), 'poplar.example.toml'), 'utf8');
  const doc = parseToml(text);
  const active = new Set<string>();
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'sni') {
      for (const [name, entry] of Object.entries(value as Record<string, object>))
        for (const field of Object.keys(entry)) active.add(generic(`sni."${name}".${field}`));
    } else if (TABLES.has(key)) {
      for (const field of Object.keys(value as object)) active.add(`${key}.${field}`);
    } else active.add(key);
  }
  const commented = new Map<string, string>();
  let table = '';
  for (const line of text.split('\n')) {
    const header = /^#?\s*\[([^\]]+)\]\s*$/.exec(line);
    if (header?.[1] !== undefined) table = header[1];
    const setting = /^#\s*([A-Za-z]\w*)\s*=\s*(.+)$/.exec(line);
    if (setting?.[1] !== undefined && setting[2] !== undefined)
      commented.set(generic(table === '' ? setting[1] : `${table}.${setting[1]}`), setting[2]);
  }
  return { active, commented, doc };
}

interface Row {
  readonly key: string;
  readonly type: string;
  readonly defaultValue: string;
  readonly flag: string;
  readonly sighup: string;
}

async function readTable(): Promise<Row[]> {
  const text = await readFile(join(projectRoot(), 'docs', 'configuration.md'), 'utf8');
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    const cells = /^\|\s*`([^`]+)`\s*\|(.*)\|(.*)\|(.*)\|(.*)\|\s*$/.exec(line);
    if (cells === null) continue;
    const [, key = '', type = '', defaultValue = '', flag = '', sighup = ''] = cells.map((c) => c.trim());
    rows.push({ key, type, defaultValue, flag, sighup });
  }
  return rows;
}

const sorted = (keys: Iterable<string>): string[] => [...keys].sort();

test('poplar.example.toml holds every setting the parser takes, and nothing else', async () => {
  const { active, commented } = await readExample();
  const inExample = new Set([...active, ...commented.keys()]);
  const missing = parserKeys().filter((k) => !inExample.has(k));
  assert.deepEqual(missing, [], 'settings the parser takes that poplar.example.toml does not show');
  const unknown = [...inExample].filter((k) => !parserKeys().includes(k));
  assert.deepEqual(unknown, [], 'settings in poplar.example.toml that the parser does not take');
});

test('poplar.example.toml parses, its settings are the defaults, its examples are TOML', async () => {
  const { doc, commented } = await readExample();
  const config = resolveConfig(layerFromToml(doc, 'poplar.example.toml'));
  assert.deepEqual(config, resolveConfig(), 'a setting in poplar.example.toml is not its default');
  for (const [key, value] of commented) {
    assert.doesNotThrow(() => parseToml(`x = ${value}`), `${key}: ${value} is not a TOML value`);
  }
});

test("docs/configuration.md's table has one row for each setting the parser takes", async () => {
  const rows = await readTable();
  const keys = rows.map((r) => r.key);
  assert.deepEqual(sorted(keys), sorted(parserKeys()));
  assert.equal(new Set(keys).size, keys.length, 'a setting has two rows');
  for (const row of rows) {
    assert.notEqual(row.type, '', `${row.key}: no type`);
    assert.notEqual(row.defaultValue, '', `${row.key}: no default`);
    assert.match(row.sighup, /^(yes|no)\b/, `${row.key}: SIGHUP must say yes or no`);
  }
});

test("the table's defaults are the parser's and its flags are poplar's", async () => {
  const rows = await readTable();
  const defaults = resolveConfig();
  const { active } = await readExample();
  const { stdout: help } = await run(process.execPath, [join(projectRoot(), 'bin', 'poplar.js'), '--help']);
  const flagsInTable = new Set<string>();
  for (const row of rows) {
    // A setting with a default value of its own shows it as TOML, as the example's line has it.
    if (active.has(row.key)) {
      const literal = /^`(.+)`$/.exec(row.defaultValue)?.[1];
      assert.ok(literal !== undefined, `${row.key}: the default ${row.defaultValue} is not a TOML value`);
      const [table, field] = row.key.split('.');
      const actual =
        table === 'limits'
          ? defaults.limits[field as keyof DaemonConfig['limits']]
          : table === 'userdb'
            ? defaults.userdb[field as keyof DaemonConfig['userdb']]
            : defaults[row.key as keyof DaemonConfig];
      assert.deepEqual(parseToml(`x = ${literal}`)['x'], actual, `${row.key}: the default is not ${literal}`);
    }
    for (const [flag] of row.flag.matchAll(/--?[a-z][a-z-]*/g)) {
      flagsInTable.add(flag);
      assert.ok(new RegExp(`(^|[\\s,])${flag}\\b`, 'm').test(help), `${row.key}: poplar has no ${flag}`);
    }
  }
  // Every option of poplar --help that sets something is in the table.
  const options = [...help.matchAll(/^\s+(?:-\w, )?(--[a-z-]+)/gm)].map((m) => m[1] ?? '');
  const notSettings = new Set(['--config', '--help', '--version']);
  const untold = options.filter((o) => !notSettings.has(o) && !flagsInTable.has(o));
  assert.deepEqual(untold, [], 'flags of poplar --help that the table does not name');
});

test("the table's SIGHUP column is what a reload takes", async () => {
  const rows = await readTable();
  // TLS on (certificate settings are live only while it stays on), every other setting its default.
  const old = resolveConfig({ tlsCert: 'cert.pem', tlsKey: 'key.pem' });
  for (const row of rows) {
    const [top = '', field = ''] = row.key.split('.');
    let next: DaemonConfig;
    let name: string;
    if (top === 'limits') {
      const limit = field as keyof DaemonConfig['limits'];
      next = { ...old, limits: { ...old.limits, [limit]: old.limits[limit] + 1 } };
      name = row.key;
    } else {
      // A new value of any kind: compareConfigs compares by value.
      next = { ...old, [top]: `changed ${row.key}` };
      name = top;
    }
    const { applied, needsRestart } = compareConfigs(old, next);
    const isLive = applied.includes(name);
    assert.ok(isLive || needsRestart.includes(name), `${row.key}: the reload saw no change`);
    assert.equal(row.sighup.startsWith('yes'), isLive, `${row.key}: SIGHUP says ${row.sighup}`);
  }
});
