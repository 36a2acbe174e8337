// Summarises V8 CPU profiles (.cpuprofile, written by `node --cpu-prof`): self time per function,
// summed over every profile in a folder (one per process: the primary and each worker).
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** The `top` functions by self time, as rows [percent, ms, function, where]. */
export async function summariseProfiles(dir, repo, top = 25) {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const selfUs = new Map();
  let totalUs = 0;
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8'));
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    // Each sample is charged the interval up to the next one.
    for (let i = 0; i < profile.samples.length; i++) {
      const node = byId.get(profile.samples[i]);
      const us = profile.timeDeltas[i + 1] ?? 0;
      if (node === undefined) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      const where = url === '' ? '' : `${relative(repo, url.replace(/^file:\/\//, ''))}:${lineNumber + 1}`;
      const key = `${functionName || '(anonymous)'}\t${where}`;
      selfUs.set(key, (selfUs.get(key) ?? 0) + us);
      totalUs += us;
    }
  }
  const rows = [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, us]) => {
      const [fn, where] = key.split('\t');
      return [((100 * us) / totalUs).toFixed(1), (us / 1000).toFixed(0), fn, where];
    });
  return { files: files.length, totalMs: totalUs / 1000, rows };
}
