/**
 * Storage fakes for the tests and the bench: one that counts calls and bytes, and one with a byte
 * quota that throws like a full platform store, can be made to fail outright or to lose writes, and
 * shows its raw map (with no quota, the plain memory store a test inspects).
 */
import { MpbusError } from '../../src/errors'
import { createMemoryStorage } from '../../src/platform/memory-storage'
import type { Storage } from '../../src/platform/types'
import { byteLength } from '../../src/utf8'

export interface Counts {
  get: number
  set: number
  del: number
  keys: number
  /** UTF-8 bytes of every value written. */
  bytes: number
}

export interface CountingStorage extends Storage {
  counts: Counts
  reset(): void
}

export function createCountingStorage(
  inner: Storage = createMemoryStorage(),
  measure: (text: string) => number = byteLength,
): CountingStorage {
  const counts: Counts = { get: 0, set: 0, del: 0, keys: 0, bytes: 0 }
  return {
    counts,
    reset() {
      Object.assign(counts, { get: 0, set: 0, del: 0, keys: 0, bytes: 0 })
    },
    get(key) {
      counts.get++
      return inner.get(key)
    },
    set(key, value) {
      inner.set(key, value)
      counts.set++
      counts.bytes += measure(value)
    },
    del(key) {
      counts.del++
      inner.del(key)
    },
    keys() {
      counts.keys++
      return inner.keys()
    },
  }
}

export interface QuotaStorage extends Storage {
  /** Largest total of key + value bytes; writes beyond it throw `STORAGE_FULL`. Mutable. */
  quota: number
  /** When set, every call throws this (a storage that is broken, not full). */
  broken?: unknown
  /**
   * When set, that many more writes (set, del) land; later ones are silently lost, as when the
   * process is killed right after that write. Unset it to bring storage back.
   */
  kill?: number
  used(): number
  /** The raw map, for tests that corrupt or inspect records. */
  readonly map: Map<string, string>
}

export function createQuotaStorage(quota = Number.POSITIVE_INFINITY): QuotaStorage {
  const map = new Map<string, string>()
  const size = (k: string, v: string | undefined) => (v === undefined ? 0 : byteLength(k) + byteLength(v))
  const check = () => {
    if (storage.broken) throw storage.broken
  }
  const lands = () => storage.kill === undefined || storage.kill-- > 0
  const storage: QuotaStorage = {
    quota,
    map,
    used: () => Array.from(map).reduce((n, [k, v]) => n + size(k, v), 0),
    get(key) {
      check()
      return map.get(key)
    },
    set(key, value) {
      check()
      if (storage.used() - size(key, map.get(key)) + size(key, value) > storage.quota)
        throw new MpbusError('STORAGE_FULL', `quota ${storage.quota} exceeded`)
      if (lands()) map.set(key, value)
    },
    del(key) {
      check()
      if (lands()) map.delete(key)
    },
    keys() {
      check()
      return Array.from(map.keys())
    },
  }
  return storage
}
