/**
 * How the outboxes sharing one storage and prefix name their namespaces (src/outbox/owner.ts):
 * the main one is `${prefix}/`, any other `${prefix}/@${id}/`. Here, below the outbox, because a
 * platform's `share` (src/platform/web-locks.ts) names its locks after them too.
 */

/** The namespaces with keys under `prefix/`: '' (the main one) first, then the others oldest first. */
export function found(keys: string[], prefix: string): string[] {
  const out: string[] = []
  const dir = prefix + '/'
  for (const key of keys) {
    if (key.slice(0, dir.length) !== dir) continue
    const m = /^(?:(@[\w-]+)\/)?(?:\d+|seq|w)$/.exec(key.slice(dir.length))
    const ns = m ? m[1] || '' : undefined
    if (ns !== undefined && out.indexOf(ns) < 0) out.push(ns)
  }
  return out.sort()
}

/** The key prefix of namespace `ns`. */
export const dirOf = (prefix: string, ns: string) => `${prefix}/${ns ? ns + '/' : ''}`

/** A namespace id: sorts by creation time. */
export const newId = () => '@' + Date.now().toString(36) + Math.random().toString(36).slice(2, 8)
