/**
 * `mpbus/testing`: run mini program code in Node against faithful fakes of the platform.
 * Node only (real `ws` sockets, node:net); never bundled into the mini program build.
 */
export type { FaultProxy } from './fault-proxy'
export { createFaultProxy } from './fault-proxy'
export type {
  MyCallbacks,
  MyCloseOption,
  MyConnectSocketOption,
  MyError,
  MyMessage,
  MyNetworkStatus,
  MyRuntime,
  MyRuntimeOptions,
  MySendOption,
  MySocketTask,
} from './my-runtime'
export { createMyRuntime } from './my-runtime'
export type { RedisCluster, RedisClusterOptions } from './redis-cluster'
export { startRedisCluster } from './redis-cluster'
export type { RedisServer, RedisServerOptions } from './redis-server'
export { freePort, startRedisServer } from './redis-server'
export type { RuntimeControl, RuntimeCounters, RuntimeOptions } from './runtime-core'
export { createStorageArea, StorageArea } from './runtime-core'
export type {
  FrameHook,
  ReceivedFrame,
  Route,
  RouteContext,
  TestServer,
  TestServerOptions,
  UserStats,
} from './test-server'
export { createTestServer } from './test-server'
export type {
  WxCallbacks,
  WxConnectSocketOption,
  WxNetworkStatus,
  WxResult,
  WxRuntime,
  WxRuntimeOptions,
  WxSocketTask,
} from './wx-runtime'
export { createWxRuntime } from './wx-runtime'
