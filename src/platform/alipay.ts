import { miniProgramPlatform } from './mini-program'
import type { Platform } from './types'

/**
 * Alipay (`my`): the SocketTask adapter in Alipay's dialect (`multiple: true`, the global socket
 * when no task comes, object-form storage: see `miniProgramPlatform`).
 */
export function alipayPlatform(my: any): Platform {
  return miniProgramPlatform(my, 'my')
}

export { decodeBase64, unwrap } from './shared'
