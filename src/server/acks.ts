/**
 * Acknowledgements as docs/protocol.md has them ("Messages and acknowledgements"): with `batch`,
 * the ids handled in one macrotask go in one frame (`{[op]: 'Ack', [idKey + 's']: [...]}`), a lone
 * id in the one-id form; without, one frame per id. Shared by `mpbus/server` and the test kit's server.
 */
import { ACK, BATCH, ID, OP } from '../protocol'

export function createAcks(
  send: (frame: Record<string, unknown>) => void,
  batch: boolean,
  op = ACK,
  idKey = ID,
): (id: string) => void {
  let ids: string[] = []
  return (id) => {
    if (!batch) return send({ [OP]: op, [idKey]: id })
    if (ids.push(id) > 1) return
    setImmediate(() => {
      const out = ids
      ids = []
      send(out.length === 1 ? { [OP]: op, [idKey]: out[0] } : { [OP]: op, [idKey + BATCH]: out })
    })
  }
}
