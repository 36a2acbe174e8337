/**
 * The public API is `src/index.ts` and nothing else (package.json exports only "."): at most 50
 * names, each documented where it is declared, so that a library user's editor shows what it is.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import ts from 'typescript';
import * as api from '../../src/index.js';

const MAX_NAMES = 50;

/** The values the package exports at run time (types leave nothing behind). */
const RUNTIME = [
  'ConfigError',
  'DEFAULT_LIMITS',
  'IntrospectionVerifier',
  'JwksVerifier',
  'MaildirStore',
  'MemoryStore',
  'MessageGoneError',
  'MonitorClient',
  'MonitorError',
  'PasswdFileAuthenticator',
  'Pop3Error',
  'Pop3Server',
  'RespCode',
  'StaticAuthenticator',
  'createServer',
  'deliverToMaildir',
  'hashPassword',
  'measureMessage',
];

test('the package exports exactly the intended values at run time', () => {
  assert.deepEqual(Object.keys(api).sort(), [...RUNTIME].sort());
});

test(`src/index.ts exports at most ${MAX_NAMES} names, each with a doc comment`, () => {
  // The source, whether this runs compiled (build/test/unit) or under tsx (test/unit).
  const root = new URL(import.meta.url.includes('/build/') ? '../../../' : '../../', import.meta.url);
  const index = fileURLToPath(new URL('src/index.ts', root));
  const program = ts.createProgram([index], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(index);
  assert.ok(source, `cannot read ${index}`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  assert.ok(moduleSymbol);
  const exported = checker.getExportsOfModule(moduleSymbol);
  const undocumented = exported
    .map((symbol) => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol))
    .filter((symbol) => ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim() === '')
    .map((symbol) => symbol.getName());
  assert.ok(exported.length > RUNTIME.length, `only ${exported.length} names found: is the path right?`);
  assert.ok(exported.length <= MAX_NAMES, `${exported.length} names exported`);
  assert.deepEqual(undocumented, [], 'exported without a doc comment');
});
