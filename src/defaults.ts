/**
 * `{ ...defaults, ...given }`, except that a field given as `undefined` keeps its default:
 * the bus passes its options on as they came, and an option left out arrives as `undefined`.
 * Only the fields of `defaults` are read, so every module lists each of its options there.
 */
export function withDefaults<T extends object>(defaults: T, given?: Partial<T>): T {
  const out = {} as T
  for (const key in defaults) out[key] = given && given[key] !== undefined ? given[key]! : defaults[key]
  return out
}
