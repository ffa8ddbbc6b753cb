export type { MpbusErrorCode } from './errors'
export { MpbusError } from './errors'
export { createMemoryStorage } from './platform/memory-storage'
export type { CloseInfo, Platform, Socket, SocketData, SocketListeners, Storage } from './platform/types'
