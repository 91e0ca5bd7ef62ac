import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes that make runs findable in the Temporal UI (e.g. `RunKind="backup" AND JobId="3"`). */
export const RunKindKey = defineSearchAttributeKey('RunKind', SearchAttributeType.KEYWORD);
export const JobIdKey = defineSearchAttributeKey('JobId', SearchAttributeType.KEYWORD);
export const RepoIdKey = defineSearchAttributeKey('RepoId', SearchAttributeType.KEYWORD);
export const HostIdKey = defineSearchAttributeKey('HostId', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTE_KEYS = [RunKindKey, JobIdKey, RepoIdKey, HostIdKey];
