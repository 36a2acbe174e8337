import { access, constants } from 'node:fs/promises';
import type { TestContext } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { tempDir } from './temp-dir.js';

/** Debian's Chromium: the tests drive it, they never download a browser of their own. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * The flags of a headless Chromium on a machine without a network: no GPU, no QUIC, nothing it
 * would fetch from Google's hosts on its own.
 */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface BrowserOptions {
  /** HTTP Basic credentials the browser answers challenges with. */
  readonly httpCredentials?: { readonly username: string; readonly password: string };
  readonly colorScheme?: 'light' | 'dark';
  readonly viewport?: { readonly width: number; readonly height: number };
  /** Trust any certificate (the test CA is not in Chromium's store). */
  readonly ignoreHTTPSErrors?: boolean;
}

/**
 * A fresh Chromium profile (its own --user-data-dir, in a temp folder) driven by playwright-core;
 * closed when the test ends. Fails with the install command when Chromium is missing.
 */
export async function openBrowser(t: TestContext, options: BrowserOptions = {}): Promise<BrowserContext> {
  try {
    await access(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is missing: install it with "apt-get install chromium" (Debian)`);
  }
  const profile = await tempDir(t, 'poplar-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: FLAGS,
    ...options,
    ...(options.httpCredentials === undefined ? {} : { httpCredentials: { ...options.httpCredentials } }),
    ...(options.viewport === undefined ? {} : { viewport: { ...options.viewport } }),
  });
  t.after(() => context.close());
  return context;
}
