import type { Storage } from './types'

/** Storage that lives as long as the object: for tests, and for platforms with no storage of their own. */
export function createMemoryStorage(): Storage {
  const map = new Map<string, string>()
  return {
    get: (key) => map.get(key),
    set: (key, value) => {
      map.set(key, value)
    },
    del: (key) => {
      map.delete(key)
    },
    keys: () => Array.from(map.keys()),
  }
}
