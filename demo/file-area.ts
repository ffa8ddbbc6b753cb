/**
 * A mini program's storage that lives in a file, so a simulated app kill and cold start really
 * reads the outbox back from disk.
 *
 * It is the test kit's `StorageArea` (what `wx.setStorageSync` writes into, quotas and all) with
 * every change written through to one JSON file per client. The write is synchronous, like
 * `wx.setStorageSync`, and atomic (temp file + rename), so the file always holds a whole state.
 * The runtime stops calling it once killed, so a dead app writes nothing, as on a phone.
 */
import fs from 'node:fs'
import { StorageArea } from '../src/testing/index'

export class FileStorageArea extends StorageArea {
  /** `StorageArea.set` deletes the old entry first: one file write per change, not two. */
  private inSet = false

  /** Loads `file` when it exists (a cold start), or starts empty (a first launch). */
  constructor(private readonly file: string) {
    super()
    if (!fs.existsSync(file)) return
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, string>
    this.inSet = true
    for (const key of Object.keys(saved)) super.set(key, saved[key]!)
    this.inSet = false
  }

  override set(key: string, json: string): void {
    this.inSet = true
    super.set(key, json)
    this.inSet = false
    this.save()
  }

  override delete(key: string): void {
    super.delete(key)
    if (!this.inSet) this.save()
  }

  override clear(): void {
    super.clear()
    this.save()
  }

  private save(): void {
    const all: Record<string, string> = {}
    for (const key of this.keys()) all[key] = this.raw(key)!
    const temp = `${this.file}.tmp`
    fs.writeFileSync(temp, JSON.stringify(all))
    fs.renameSync(temp, this.file)
  }
}
