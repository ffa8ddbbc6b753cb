export type Tool = 'chromium' | 'redisServer'
export function find(tool: Tool): string | null
export function installH5(): boolean
export function prepare(options?: { install?: boolean }): Record<Tool, string | null>
