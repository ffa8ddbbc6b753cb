export type {
  Bus,
  BusEmitter,
  BusEvents,
  BusOptions,
  BusState,
  Codec,
  LoginFrame,
  OpMap,
  SendOptions,
} from './bus'
export { createBus } from './bus'
export type { Frame, Handler } from './bus/dispatcher'
export { bindComponent, bindPage } from './bus/page'
export type { MpbusErrorCode } from './errors'
export { MpbusError } from './errors'
export type {
  CloseInfo,
  Lock,
  Platform,
  Socket,
  SocketData,
  SocketListeners,
  Storage,
} from './platform/index'
export {
  alipayPlatform,
  createMemoryStorage,
  detectPlatform,
  localStorageStorage,
  miniProgramPlatform,
  toPlatform,
  webSocketPlatform,
} from './platform/index'
