/**
 * Storage for Node: one file per key in `dir`, written atomically (temp file, fsync, rename), so a
 * process killed mid-write leaves the old value or the new one, never a torn file.
 *
 * File names: `k` + the key's UTF-8 bytes with everything but `[a-z0-9_-]` written as `%XX`. Upper
 * case is escaped too, so keys that differ only in case stay apart on case-insensitive file systems
 * (macOS, Windows), and no name is `.`/`..` or holds a separator. Temp files start with `.` and are
 * never listed. A key whose encoded name is over the file system's limit (255 bytes on most) fails
 * with `STORAGE_ERROR`.
 *
 * Node only: this file is excluded from the mini program build and its type check.
 */
import fs from 'node:fs'
import path from 'node:path'
import { MpbusError } from '../errors'
import type { Storage } from './types'

const PLAIN = /[a-z0-9_-]/

function encodeKey(key: string): string {
  let name = 'k'
  for (const byte of Buffer.from(key, 'utf8')) {
    const ch = String.fromCharCode(byte)
    name += byte < 0x80 && PLAIN.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return name
}

function decodeName(name: string): string | undefined {
  if (name[0] !== 'k') return undefined
  try {
    return decodeURIComponent(name.slice(1))
  } catch {
    return undefined
  }
}

function fail(action: string, key: string, cause: unknown): MpbusError {
  const code = (cause as NodeJS.ErrnoException)?.code
  const full = code === 'ENOSPC' || code === 'EDQUOT'
  return new MpbusError(
    full ? 'STORAGE_FULL' : 'STORAGE_ERROR',
    `file storage: ${action} "${key}" failed (${code ?? cause})`,
    cause,
  )
}

export function createFileStorage(dir: string): Storage {
  fs.mkdirSync(dir, { recursive: true })
  let temps = 0
  const file = (key: string) => path.join(dir, encodeKey(key))

  return {
    get(key) {
      try {
        return fs.readFileSync(file(key), 'utf8')
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw fail('read', key, e)
      }
    },
    set(key, value) {
      const temp = path.join(dir, `.tmp-${process.pid}-${++temps}`)
      let fd: number | undefined
      try {
        fd = fs.openSync(temp, 'w')
        fs.writeSync(fd, value, null, 'utf8')
        // Without the fsync a power loss right after the rename can leave an empty file on some file systems.
        fs.fsyncSync(fd)
        fs.closeSync(fd)
        fd = undefined
        fs.renameSync(temp, file(key))
      } catch (e) {
        try {
          if (fd !== undefined) fs.closeSync(fd)
          fs.rmSync(temp, { force: true })
        } catch {}
        throw fail('write', key, e)
      }
    },
    del(key) {
      try {
        fs.rmSync(file(key), { force: true })
      } catch (e) {
        throw fail('delete', key, e)
      }
    },
    keys() {
      let names: string[]
      try {
        names = fs.readdirSync(dir)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
        throw fail('list', dir, e)
      }
      const keys: string[] = []
      for (const name of names) {
        const key = decodeName(name)
        if (key !== undefined) keys.push(key)
      }
      return keys
    },
  }
}
