// The host functions every mini program runtime provides, declared for the core type check, which
// has no Node or DOM types on purpose
// (https://developers.weixin.qq.com/miniprogram/dev/framework/runtime/js-support.html).
declare function setTimeout(callback: (...args: any[]) => void, ms?: number): number
declare function clearTimeout(id: number | undefined): void
declare const console: { log(...args: unknown[]): void; warn(...args: unknown[]): void }
