export type { MpbusErrorCode } from './errors'
export { MpbusError } from './errors'
export type { CloseInfo, Platform, Socket, SocketData, SocketListeners, Storage } from './platform/index'
export {
  alipayPlatform,
  createMemoryStorage,
  detectPlatform,
  localStorageStorage,
  miniProgramPlatform,
  toPlatform,
  webSocketPlatform,
} from './platform/index'
