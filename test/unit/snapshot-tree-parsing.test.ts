import { randomInt } from 'node:crypto';
import { bytesAsText, goQuotedBytes } from '../../activities/go-quoted';
import { jsonElementSplitter } from '../../activities/json-stream';
import { goPermissions } from '../../activities/snapshot-browse';

describe('jsonElementSplitter', () => {
  const tree = {
    nodes: [
      { name: 'a "quoted" {brace} [bracket]', type: 'file', content: ['x', 'y'] },
      { name: 'back\\slash\\', type: 'dir', subtree: 'z', extended_attributes: [{ name: 'k', value: 'v}' }] },
      { name: 'caf\u00e9 \ud83d\ude00', type: 'file', generic_attributes: { nested: { deep: [1, { two: 2 }] } } },
    ],
  };
  const text = Buffer.from(JSON.stringify(tree), 'utf8');

  test('gives each element of the nested array, whatever the chunk boundaries (multi-byte characters split too)', () => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const seen: unknown[] = [];
      const splitter = jsonElementSplitter(2, (element) => seen.push(JSON.parse(element)));
      for (let at = 0; at < text.length; ) {
        const size = randomInt(1, 9);
        splitter.push(text.subarray(at, at + size));
        at += size;
      }
      expect(seen).toEqual(tree.nodes);
    }
  });

  test('holds one element at a time: a long array streams through', () => {
    let count = 0;
    const splitter = jsonElementSplitter(2, () => count++);
    splitter.push(Buffer.from('{"nodes":['));
    for (let i = 0; i < 100_000; i++) splitter.push(Buffer.from(`${i ? ',' : ''}{"name":"f${i}","type":"file"}`));
    splitter.push(Buffer.from(']}'));
    expect(count).toBe(100_000);
  });
});

describe('goQuotedBytes (restic stores names as Go quoted strings)', () => {
  test.each([
    ['plain.txt', Buffer.from('plain.txt')],
    ['caf\\xe9.txt', Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])],
    ['new\\nline', Buffer.from('new\nline')],
    ['t\\tab\\"q', Buffer.from('t\tab"q')],
    ['a\\\\b', Buffer.from('a\\b')],
    ['\\x01ctl', Buffer.from([1, 0x63, 0x74, 0x6c])],
    ['zw\\u200bsp', Buffer.from('zw\u200bsp')],
    ['ok-\u00e9 \ud83d\ude00', Buffer.from('ok-\u00e9 \ud83d\ude00')],
    ['\\U0001f600', Buffer.from('\ud83d\ude00')],
    ['\\101', Buffer.from('A')],
  ])('%s', (quoted, bytes) => {
    expect(goQuotedBytes(quoted)).toEqual(bytes);
  });

  test('a name that is not a quoted form is taken as it is', () => {
    expect(goQuotedBytes('bad\\q')).toEqual(Buffer.from('bad\\q'));
    expect(goQuotedBytes('trailing\\')).toEqual(Buffer.from('trailing\\'));
  });

  test('bytesAsText says when the text is exact', () => {
    expect(bytesAsText(Buffer.from('caf\u00e9'))).toEqual({ text: 'caf\u00e9', exact: true });
    expect(bytesAsText(Buffer.from([0x63, 0xe9]))).toEqual({ text: 'c\ufffd', exact: false });
  });
});

test('goPermissions prints modes as restic ls does', () => {
  expect(goPermissions(420)).toBe('-rw-r--r--');
  expect(goPermissions(2147484141)).toBe('drwxr-xr-x');
  expect(goPermissions(134218239)).toBe('Lrwxrwxrwx');
});
