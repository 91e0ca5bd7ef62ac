import type { components } from '../api/contract.gen';
import { FailureType } from '../common/failures';
import { loadRepository, withResticSession, type ResticSession } from './access';
import type { ActivityDeps } from './deps';
import { typedFailure } from './failure';
import { bytesAsText, goQuotedBytes } from './go-quoted';
import { jsonElementSplitter } from './json-stream';
import { resticFailure, runRestic } from './restic';

/** A node of a restic tree blob, as restic stores it (the name still Go-quoted). */
interface TreeNode {
  name: string;
  type: string;
  mode?: number;
  mtime?: string;
  atime?: string;
  ctime?: string;
  uid?: number;
  gid?: number;
  user?: string;
  group?: string;
  inode?: number;
  links?: number;
  size?: number;
  linktarget?: string;
  subtree?: string;
}

/** An entry of a directory listing, as the contract shows it. */
export type SnapshotEntry = components['schemas']['SnapshotFile'];

export interface DirectoryPage {
  entries: SnapshotEntry[];
  total: number;
}

// Go's os.FileMode letters, from the highest bit down (what `restic ls` prints as permissions).
const MODE_LETTERS = 'dalTLDpSugct?';

export function goPermissions(mode: number): string {
  let type = '';
  for (let i = 0; i < MODE_LETTERS.length; i++) if ((mode >>> (31 - i)) & 1) type += MODE_LETTERS[i];
  const rwx = 'rwxrwxrwx'.split('').map((c, i) => ((mode >>> (8 - i)) & 1 ? c : '-')).join('');
  return `${type || '-'}${rwx}`;
}

/** Calls `onNode` for each node of a tree blob, streamed from `restic cat blob`, in restic's (name) order. */
async function forEachNode(session: ResticSession, treeId: string, onNode: (node: TreeNode) => void): Promise<void> {
  const splitter = jsonElementSplitter(2, (text) => onNode(JSON.parse(text) as TreeNode));
  const result = await runRestic(session.exec, session.binary, session.access, ['cat', 'blob', '--no-lock', treeId], {
    onStdoutChunk: (chunk) => splitter.push(chunk),
  });
  if (result.exitCode !== 0) throw resticFailure(result, 'reading the snapshot tree failed');
}

function entryOf(node: TreeNode, parent: Buffer): SnapshotEntry {
  const nameBytes = goQuotedBytes(node.name);
  const pathBytes = Buffer.concat([parent, Buffer.from('/'), nameBytes]);
  const name = bytesAsText(nameBytes);
  const path = bytesAsText(pathBytes);
  const entry: SnapshotEntry = {
    name: name.text,
    ...(name.exact ? {} : { name_base64: nameBytes.toString('base64') }),
    type: node.type as SnapshotEntry['type'],
    path: path.text,
    ...(path.exact ? {} : { path_base64: pathBytes.toString('base64') }),
  };
  if (node.type === 'file') entry.size = node.size ?? 0;
  if (node.mode !== undefined) Object.assign(entry, { mode: node.mode, permissions: goPermissions(node.mode) });
  for (const key of ['uid', 'gid', 'user', 'group', 'inode', 'links', 'linktarget', 'mtime', 'atime', 'ctime'] as const) {
    if (node[key] !== undefined && node[key] !== '') (entry as unknown as Record<string, unknown>)[key] = node[key];
  }
  return entry;
}

/** Browsing snapshots: one directory level at a time, straight from restic's trees. */
export function snapshotBrowseActivities(deps: ActivityDeps) {
  return {
    /**
     * One page of a directory of a snapshot. The path (its bytes, base64, so any name can be
     * asked for) is walked from the snapshot's root tree one level at a time; the directory's
     * tree is then streamed, keeping only the page, so memory stays small for any directory size.
     */
    async listSnapshotDirectory(input: { repoId: number; tree: string; pathBase64: string; offset: number; limit: number }): Promise<DirectoryPage> {
      const repo = await loadRepository(deps, input.repoId);
      const path = Buffer.from(input.pathBase64, 'base64');
      const components = path.toString('latin1').split('/').filter(Boolean).map((c) => Buffer.from(c, 'latin1'));
      return withResticSession(deps, { repo, host: null }, async (session) => {
        let tree = input.tree;
        let walked = Buffer.alloc(0);
        for (const component of components) {
          let found: TreeNode | null = null;
          await forEachNode(session, tree, (node) => {
            if (!found && goQuotedBytes(node.name).equals(component)) found = node;
          });
          walked = Buffer.concat([walked, Buffer.from('/'), component]);
          const node = found as TreeNode | null;
          const shown = bytesAsText(walked).text;
          if (!node) throw typedFailure(FailureType.PathNotFound, `${shown} is not in the snapshot`);
          if (node.type !== 'dir' || !node.subtree) throw typedFailure(FailureType.NotADirectory, `${shown} is not a directory`);
          tree = node.subtree;
        }
        const entries: SnapshotEntry[] = [];
        let total = 0;
        await forEachNode(session, tree, (node) => {
          if (total >= input.offset && entries.length < input.limit) entries.push(entryOf(node, walked));
          total++;
        });
        return { entries, total };
      });
    },
  };
}
