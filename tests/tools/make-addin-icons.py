#!/usr/bin/env python3
"""Draws the Outlook add-in's icons (web-taskpane/public-addin/icon-{16,32,64,80,128}.png): a blue rounded square with a
white envelope and a green dot (seen). Standard library only; run once and commit the PNGs."""
import os, struct, zlib

def png(path, size, pixels):
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))

def inside(x, y):
    """Colour at (x, y) in a unit square, or None for transparent."""
    r = 0.18  # corner radius of the tile
    cx, cy = min(max(x, r), 1 - r), min(max(y, r), 1 - r)
    if (x - cx) ** 2 + (y - cy) ** 2 > r * r:
        return None
    if (x - 0.76) ** 2 + (y - 0.27) ** 2 < 0.13 ** 2:
        return (34, 197, 94, 255)  # the "seen" dot
    l, t, rr, b, w = 0.2, 0.34, 0.8, 0.74, 0.055
    in_box = l <= x <= rr and t <= y <= b
    border = in_box and (x - l < w or rr - x < w or y - t < w or b - y < w)
    # The flap: two lines from the top corners to the middle.
    mid = 0.5
    def near(px, py, ax, ay, bx, by):
        dx, dy = bx - ax, by - ay
        k = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
        return ((ax + k * dx - px) ** 2 + (ay + k * dy - py) ** 2) ** 0.5 < w * 0.75
    flap = in_box and (near(x, y, l, t, mid, 0.56) or near(x, y, rr, t, mid, 0.56))
    if border or flap:
        return (255, 255, 255, 255)
    return (15, 98, 254, 255)

def draw(size, samples=4):
    rows = []
    for j in range(size):
        row = []
        for i in range(size):
            acc = [0, 0, 0, 0]
            for sj in range(samples):
                for si in range(samples):
                    c = inside((i + (si + 0.5) / samples) / size, (j + (sj + 0.5) / samples) / size)
                    if c:
                        for k in range(3): acc[k] += c[k] * c[3] / 255
                        acc[3] += c[3]
            n = samples * samples
            a = acc[3] / n
            row.append((0, 0, 0, 0) if a == 0 else tuple(round(acc[k] * 255 / acc[3]) for k in range(3)) + (round(a),))
        rows.append(row)
    return rows

out = os.path.join(os.path.dirname(__file__), "..", "..", "web-taskpane", "public-addin")
for s in (16, 32, 64, 80, 128):
    png(os.path.join(out, f"icon-{s}.png"), s, draw(s))
