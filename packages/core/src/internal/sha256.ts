/**
 * SHA-256 of a string's UTF-8 bytes, synchronous and dependency-free (FIPS 180-4). Web Crypto's
 * `subtle.digest` is asynchronous and cost about 100 µs per call in Node, more than a whole paid
 * call; this costs a few µs for a token-sized input.
 *
 * @internal
 */
// The 64 round constants (FIPS 180-4 §4.2.2), big-endian, as base64: half the bytes of the number
// list in a minified bundle. Decoded on the first hash, not at import.
const K_BASE64 =
  "QoovmHE3RJG1wPvP6bXbpTlWwltZ8RHxkj+CpKscXtXYB6qYEoNbASQxhb5VDH3Dcr5ddIDesf6b3AanwZvxdOSbacHvvkeGD8GdxiQMocwt6SxvSnSEqlywqdx2+YjamD5RUqgxxm2wAyfIv1l/x8bgC/PVp5FHBspjURQpKWcntwqFLhshOE0sbfxTOA0TZQpzVHZqCruBwskuknIshaK/6KGoGmZLwkuLcMdsUaPRkugZ1pkGJPQONYUQaqBwGaTBFh43bAgnSHdMNLC8tTkcDLNO2KpKW5zKT2gub/N0j4LueKVjb4TIeBSMxwIIkL7/+qRQbOu++aP3xnF48g=="
let K: Uint32Array | undefined
const roundConstants = (): Uint32Array => {
  if (K !== undefined) return K
  const bytes = new DataView(Uint8Array.from(atob(K_BASE64), (c) => c.charCodeAt(0)).buffer)
  const k = new Uint32Array(64)
  for (let i = 0; i < 64; i++) k[i] = bytes.getUint32(i * 4)
  return K = k
}

const encoder = new TextEncoder()

/** The hex SHA-256 of `text` (UTF-8). */
export const sha256Hex = (text: string): string => {
  const data = encoder.encode(text)
  // Message, the 0x80 byte, zero padding, and the 64-bit length: a whole number of 64-byte blocks.
  const blocks = Math.ceil((data.length + 9) / 64)
  const bytes = new Uint8Array(blocks * 64)
  bytes.set(data)
  bytes[data.length] = 0x80
  const view = new DataView(bytes.buffer)
  const bits = data.length * 8
  view.setUint32(bytes.length - 8, Math.floor(bits / 0x100000000))
  view.setUint32(bytes.length - 4, bits >>> 0)
  const h = new Uint32Array([
    0x6a09e667,
    0xbb67ae85,
    0x3c6ef372,
    0xa54ff53a,
    0x510e527f,
    0x9b05688c,
    0x1f83d9ab,
    0x5be0cd19
  ])
  const w = new Uint32Array(64)
  const k = roundConstants()
  for (let block = 0; block < blocks; block++) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block * 64 + i * 4)
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2]
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3)
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10)
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + k[i] + w[i]) | 0
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0
      hh = g
      g = f
      f = e
      e = (d + t1) | 0
      d = c
      c = b
      b = a
      a = (t1 + t2) | 0
    }
    h[0] += a
    h[1] += b
    h[2] += c
    h[3] += d
    h[4] += e
    h[5] += f
    h[6] += g
    h[7] += hh
  }
  let hex = ""
  for (let i = 0; i < 8; i++) hex += h[i].toString(16).padStart(8, "0")
  return hex
}
