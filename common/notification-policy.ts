/** A policy as stored on a repository or a copy job: `{inherit, events: {<event>: [<channel>...]}}`. */
export interface NotificationPolicy {
  inherit?: boolean;
  events?: Record<string, string[]>;
}

/**
 * The channels of an event, walking the chain from the most specific policy to the global
 * default: a policy that names the event decides; one that does not, and says `inherit: false`,
 * means no channel; otherwise the next one up decides (a missing policy inherits).
 */
export function channelsFor(event: string, chain: (NotificationPolicy | null)[], globalChannels: string[]): string[] {
  for (const policy of chain) {
    if (!policy) continue;
    const named = policy.events?.[event];
    if (Array.isArray(named)) return [...new Set(named)];
    if (policy.inherit === false) return [];
  }
  return [...new Set(globalChannels)];
}
