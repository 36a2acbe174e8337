import { readFileSync } from 'node:fs';

/** The version in package.json, found by walking up from this file (it runs from src/ or build/src/). */
export function version(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === '@poplar-mail/poplar' && pkg.version !== undefined) return pkg.version;
    } catch {
      // Not here: look further up.
    }
  }
  return 'unknown';
}
