// Draws the Outlook add-in's icons (public-addin/icon-{16,32,64,80,128}.png): a blue rounded square with a white
// envelope and an "opened" dot. Run once by hand (`node scripts/draw-icons.mjs`) when the design changes; the PNGs
// are committed, so the build needs nothing but a copy. Only Node's own zlib: a PNG is a signature, an IHDR chunk,
// zlib-deflated scanlines in IDAT chunks and an IEND chunk, each chunk with a CRC-32.
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const out = resolve(dirname(fileURLToPath(import.meta.url)), '../public-addin');

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}
function png(size, pixel) {
  const rows = [];
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 4); // filter byte 0 (None), then RGBA
    for (let x = 0; x < size; x++) row.set(pixel(x, y), 1 + x * 4);
    rows.push(row);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8 bits per channel, RGBA, deflate, no filter method variants, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.concat(rows), { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const blue = [0x1f, 0x5f, 0xbf];
const white = [0xff, 0xff, 0xff];
const green = [0x2e, 0xb8, 0x5c];

/** Coverage of a pixel by a shape, by 4x4 supersampling, so small sizes keep smooth edges. */
function coverage(inside, x, y) {
  let n = 0;
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) if (inside(x + (i + 0.5) / 4, y + (j + 0.5) / 4)) n++;
  return n / 16;
}

function icon(size) {
  const s = size;
  const r = s * 0.18; // corner radius of the tile
  const tile = (x, y) => {
    const cx = Math.min(Math.max(x, r), s - r);
    const cy = Math.min(Math.max(y, r), s - r);
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  };
  // The envelope: a rectangle outline plus the flap's V, drawn as thick lines.
  const [l, t, rt, b] = [s * 0.18, s * 0.3, s * 0.82, s * 0.74];
  const w = Math.max(1.2, s * 0.07);
  const nearSegment = (x, y, x1, y1, x2, y2) => {
    const dx = x2 - x1, dy = y2 - y1;
    const k = Math.max(0, Math.min(1, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)));
    return Math.hypot(x - (x1 + k * dx), y - (y1 + k * dy)) <= w / 2;
  };
  const envelope = (x, y) =>
    nearSegment(x, y, l, t, rt, t) || nearSegment(x, y, rt, t, rt, b) || nearSegment(x, y, rt, b, l, b) ||
    nearSegment(x, y, l, b, l, t) || nearSegment(x, y, l, t, s / 2, s * 0.55) || nearSegment(x, y, s / 2, s * 0.55, rt, t);
  const dot = (x, y) => Math.hypot(x - s * 0.78, y - s * 0.26) <= s * 0.14;
  return png(s, (x, y) => {
    const a = coverage(tile, x, y);
    if (a === 0) return [0, 0, 0, 0];
    const e = coverage(envelope, x, y);
    const d = coverage(dot, x, y);
    const mix = (c1, c2, k) => c1.map((v, i) => Math.round(v * (1 - k) + c2[i] * k));
    let c = mix(blue, white, e);
    c = mix(c, green, d);
    return [...c, Math.round(255 * Math.max(a, d))];
  });
}

for (const size of [16, 32, 64, 80, 128]) writeFileSync(resolve(out, `icon-${size}.png`), icon(size));
console.log('wrote icons to', out);
