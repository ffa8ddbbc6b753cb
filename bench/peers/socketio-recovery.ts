// socket.io 4.8 with connection state recovery on @socket.io/redis-streams-adapter: the peer of
// mpbus/server's resume (https://socket.io/docs/v4/connection-state-recovery). Every socket joins
// the room `auction` on its first connection; a recovered one gets its rooms back by itself.
import { createAdapter } from '@socket.io/redis-streams-adapter'
import { createClient } from 'redis'
import { Server } from 'socket.io'

export async function startSocketIoRecovery(redisUrl: string) {
  const redis = createClient({ url: redisUrl })
  await redis.connect()
  const io = new Server({
    transports: ['websocket'],
    adapter: createAdapter(redis),
    connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true },
  })
  io.on('connection', (socket) => {
    if (!socket.recovered) socket.join('auction')
  })
  io.listen(0)
  return {
    io,
    port: (io as any).httpServer.address().port as number,
    /** Commands the Redis server has processed so far (INFO stats), for operations per message. */
    async redisCommands(): Promise<number> {
      const info = await redis.info('stats')
      return Number(/total_commands_processed:(\d+)/.exec(info)![1])
    },
    async close() {
      await new Promise((resolve) => io.close(resolve))
      await redis.quit().catch(() => {})
    },
  }
}
