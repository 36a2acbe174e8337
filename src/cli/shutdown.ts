export interface Closable {
  close(): unknown;
}

/** After a start that failed half way: whatever is already open would keep the process alive. */
export async function closeAll(opened: readonly Closable[]): Promise<void> {
  for (const c of [...opened].reverse()) await c.close();
}
