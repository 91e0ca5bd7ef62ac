const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = new Set([0x7b, 0x5b]); // { [
const CLOSE = new Set([0x7d, 0x5d]); // } ]

/**
 * Splits one JSON document, fed in chunks, into the elements of an array nested `depth` levels
 * down (2 for `{"nodes": [ ... ]}`), calling `onElement` with each element's text. Memory holds
 * one element at a time, however large the document: a tree of a million entries streams.
 */
export function jsonElementSplitter(depth: number, onElement: (text: string) => void): { push(chunk: Buffer): void } {
  let level = 0;
  let inString = false;
  let escaped = false;
  let parts: Buffer[] = [];
  let start = -1; // where the element began in the current chunk, -1 when outside one
  return {
    push(chunk) {
      if (level >= depth + 1) start = 0;
      for (let i = 0; i < chunk.length; i++) {
        const byte = chunk[i] as number;
        if (inString) {
          if (escaped) escaped = false;
          else if (byte === BACKSLASH) escaped = true;
          else if (byte === QUOTE) inString = false;
          continue;
        }
        if (byte === QUOTE) inString = true;
        else if (OPEN.has(byte)) {
          level++;
          if (level === depth + 1) start = i;
        } else if (CLOSE.has(byte)) {
          level--;
          if (level === depth) {
            parts.push(chunk.subarray(start, i + 1));
            onElement(Buffer.concat(parts).toString('utf8'));
            parts = [];
            start = -1;
          }
        }
      }
      if (start >= 0) parts.push(Buffer.from(chunk.subarray(start)));
      start = -1;
    },
  };
}
