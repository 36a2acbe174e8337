// Architecture rules for src/, checked by `npx depcruise src` (in `npm run lint` and .ci/run).
// Type-only imports count as imports (tsPreCompilationDeps). The 400-line limit on source files is
// not a dependency rule: test/unit/architecture.test.ts checks it.
/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      // A cycle means two files can only be understood, tested and changed together.
      name: 'no-cycles',
      comment: 'No import cycle between source files in src/.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      // The mail store is below everything that uses it: it knows users (src/user.ts), not how they
      // log in, the protocol, the monitor, the command line or the worker processes.
      name: 'mailstore-below-the-rest',
      comment: 'src/mailstore/ imports nothing from src/auth, src/pop3, src/monitor, src/cli, src/workers.',
      severity: 'error',
      from: { path: '^src/mailstore/' },
      to: { path: '^src/(auth|pop3|monitor|cli|workers)/' },
    },
    {
      // The protocol engine reaches the disk only through a MailStore, so any store can serve it.
      name: 'pop3-no-file-system',
      comment: 'src/pop3/ imports no file-system module (node:fs, node:fs/promises, fs, fs/promises).',
      severity: 'error',
      from: { path: '^src/pop3/' },
      to: { dependencyTypes: ['core'], path: '^(node:)?fs(/promises)?$' },
    },
    {
      // The cluster's Redis is a daemon's affair: the engine, the users and the monitor's protocol
      // take interfaces, and the cli and the workers hand them what src/cluster/ builds on Redis.
      name: 'cluster-beside-the-stores',
      comment:
        'src/pop3, src/auth, src/monitor, src/metrics and src/config import nothing from src/cluster/.',
      severity: 'error',
      from: { path: '^src/(pop3|auth|monitor|metrics|config)/' },
      to: { path: '^src/cluster/' },
    },
    {
      name: 'cluster-below-its-users',
      comment: 'src/cluster/ imports nothing from src/cli or src/workers (they import it).',
      severity: 'error',
      from: { path: '^src/cluster/' },
      to: { path: '^src/(cli|workers)/' },
    },
    {
      // One place knows Redis: its connection, timeouts, errors and key names.
      name: 'redis-only-in-cluster',
      comment: 'Only src/cluster/ imports ioredis.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cluster/' },
      to: { path: 'node_modules/ioredis' },
    },
    {
      // Shipped code stands alone: build/src is what the package publishes, without test/.
      name: 'src-not-from-test',
      comment: 'No file in src/ imports from test/.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
