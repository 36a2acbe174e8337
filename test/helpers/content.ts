import type { MessageContent } from '../../src/mailstore/types.js';

/** The whole of what `Maildrop.read` returned, as one buffer. */
export async function readContent(content: MessageContent): Promise<Buffer> {
  if (Buffer.isBuffer(content)) return content;
  const chunks: Buffer[] = [];
  for await (const chunk of content) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
