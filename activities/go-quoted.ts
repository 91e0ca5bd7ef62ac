const SIMPLE: Record<string, number> = { a: 0x07, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b, '\\': 0x5c, "'": 0x27, '"': 0x22 };

/**
 * The bytes of a name restic stored in a tree: restic writes node names as Go's strconv.Quote
 * without the quotes, so bytes that are not UTF-8 survive as `\xHH`. A name that is not a valid
 * quoted form (a repository written by an older restic) is taken as it is.
 */
export function goQuotedBytes(quoted: string): Buffer {
  const out: number[] = [];
  let i = 0;
  const fail = () => null;
  const decode = (): Buffer | null => {
    while (i < quoted.length) {
      const ch = quoted[i] as string;
      if (ch !== '\\') {
        const cp = quoted.codePointAt(i) as number;
        out.push(...Buffer.from(String.fromCodePoint(cp), 'utf8'));
        i += cp > 0xffff ? 2 : 1;
        continue;
      }
      const kind = quoted[i + 1];
      if (kind === undefined) return fail();
      if (kind in SIMPLE) {
        out.push(SIMPLE[kind] as number);
        i += 2;
      } else if (kind === 'x' || kind === 'u' || kind === 'U') {
        const digits = kind === 'x' ? 2 : kind === 'u' ? 4 : 8;
        const hex = quoted.slice(i + 2, i + 2 + digits);
        if (!new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(hex)) return fail();
        const value = parseInt(hex, 16);
        if (kind === 'x') out.push(value);
        else if (value > 0x10ffff) return fail();
        else out.push(...Buffer.from(String.fromCodePoint(value), 'utf8'));
        i += 2 + digits;
      } else if (/[0-7]/.test(kind)) {
        const octal = quoted.slice(i + 1, i + 4);
        if (!/^[0-7]{3}$/.test(octal) || parseInt(octal, 8) > 255) return fail();
        out.push(parseInt(octal, 8));
        i += 4;
      } else return fail();
    }
    return Buffer.from(out);
  };
  return decode() ?? Buffer.from(quoted, 'utf8');
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as text, and whether that text is exact (valid UTF-8) or shows U+FFFD for bytes that are not. */
export function bytesAsText(bytes: Buffer): { text: string; exact: boolean } {
  try {
    return { text: STRICT_UTF8.decode(bytes), exact: true };
  } catch {
    return { text: bytes.toString('utf8'), exact: false };
  }
}
