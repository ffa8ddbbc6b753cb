import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MpbusError } from '../../src/errors'
import { createFileStorage } from '../../src/node'

let dir: string

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpbus-fs-'))
})

afterEach(() => {
  vi.restoreAllMocks()
  fs.rmSync(dir, { recursive: true, force: true })
})

describe('file storage', () => {
  it('round-trips values and lists keys, odd keys included', () => {
    const store = createFileStorage(path.join(dir, 'nested', 'store'))
    const keys = ['outbox', 'Outbox', '', '.', '..', 'a/b\\c', 'k%41', '消息:1', '__proto__', 'x'.repeat(60)]
    for (const [i, k] of keys.entries()) store.set(k, `value ${i} 是`)
    for (const [i, k] of keys.entries()) expect(store.get(k)).toBe(`value ${i} 是`)
    expect(store.keys().sort()).toEqual([...keys].sort())
    expect(store.get('missing')).toBeUndefined()
    store.del('Outbox')
    store.del('missing')
    expect(store.get('Outbox')).toBeUndefined()
    expect(store.get('outbox')).toBe('value 0 是')
    // A second store on the same directory sees the same data (a restart).
    expect(createFileStorage(path.join(dir, 'nested', 'store')).get('消息:1')).toBe('value 7 是')
  })

  it('overwrites atomically: a failed write leaves the old value and no stray file', () => {
    const store = createFileStorage(dir)
    store.set('k', 'old')
    store.set('k', 'new')
    expect(store.get('k')).toBe('new')
    const rename = vi.spyOn(fs, 'renameSync').mockImplementation(() => {
      throw Object.assign(new Error('disk full'), { code: 'ENOSPC' })
    })
    let error: unknown
    try {
      store.set('k', 'newer')
    } catch (e) {
      error = e
    }
    rename.mockRestore()
    expect(error).toBeInstanceOf(MpbusError)
    expect((error as MpbusError).code).toBe('STORAGE_FULL')
    expect(store.get('k')).toBe('new')
    expect(fs.readdirSync(dir)).toEqual(['kk'])
    expect(store.keys()).toEqual(['k'])
  })

  it('maps other failures to STORAGE_ERROR', () => {
    const store = createFileStorage(dir)
    expect(() => store.set('x'.repeat(300), 'v')).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR' }))
    fs.mkdirSync(path.join(dir, 'kdir'))
    expect(() => store.get('dir')).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR' }))
  })
})
