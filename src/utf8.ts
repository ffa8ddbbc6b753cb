/**
 * UTF-8 length of a string in bytes, without TextEncoder or Buffer (mini programs
 * have neither everywhere). Storage quotas and frame limits are in bytes, not chars.
 */
export function byteLength(text: string): number {
  let bytes = text.length
  // Most text is ASCII: one native scan instead of a loop in JavaScript.
  if (!/[^\0-\x7f]/.test(text)) return bytes
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code >= 0xd800 && code <= 0xdbff) {
      // A surrogate pair: 4 bytes for 2 chars.
      bytes += 2
      i++
    } else if (code > 0x7ff) bytes += 2
    else if (code > 0x7f) bytes += 1
  }
  return bytes
}
