export type { MpbusErrorCode } from './errors'
export { MpbusError } from './errors'
export type { CloseInfo, Platform, Socket, SocketData, SocketListeners, Storage } from './platform/types'
