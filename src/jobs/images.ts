import { sharp } from './sharp.js';
import { rng } from '../util/rng.js';

/**
 * Deterministic, photo-like test images: every one a different size and composition
 * (sky-like gradients, a sun, hills, shapes), generated from a seed so runs are comparable.
 */

const SIZES: [number, number][] = [
  [640, 480], [800, 600], [1024, 768], [1280, 720], [1280, 960], [1366, 768], [1600, 900], [1920, 1080],
];


const hsl = (h: number, s: number, l: number) => `hsl(${Math.round(h) % 360},${Math.round(s)}%,${Math.round(l)}%)`;

export function photoSvg(index: number, width: number, height: number): string {
  const r = rng(index * 7919 + 17);
  const hue = r() * 360;
  const shapes: string[] = [];
  // Hills in the foreground, darker towards the viewer.
  for (let layer = 0; layer < 3; layer++) {
    const base = height * (0.55 + layer * 0.12);
    let d = `M0 ${height} L0 ${base.toFixed(0)}`;
    for (let x = 0; x <= width; x += width / 8) d += ` Q${(x + width / 16).toFixed(0)} ${(base - r() * height * 0.2).toFixed(0)} ${(x + width / 8).toFixed(0)} ${(base + (r() - 0.5) * 30).toFixed(0)}`;
    shapes.push(`<path d="${d} L${width} ${height} Z" fill="${hsl(hue + 90 + layer * 25, 45 + r() * 30, 35 - layer * 8)}"/>`);
  }
  for (let i = 0; i < 6 + Math.floor(r() * 8); i++) {
    const kind = Math.floor(r() * 3);
    const x = r() * width;
    const y = r() * height * 0.9;
    const size = (0.03 + r() * 0.12) * width;
    const fill = hsl(hue + r() * 180, 50 + r() * 50, 30 + r() * 50);
    if (kind === 0) shapes.push(`<circle cx="${x.toFixed(0)}" cy="${y.toFixed(0)}" r="${(size / 2).toFixed(0)}" fill="${fill}" fill-opacity="0.8"/>`);
    else if (kind === 1) shapes.push(`<rect x="${x.toFixed(0)}" y="${y.toFixed(0)}" width="${size.toFixed(0)}" height="${(size * (0.5 + r())).toFixed(0)}" fill="${fill}" transform="rotate(${(r() * 60 - 30).toFixed(0)} ${x.toFixed(0)} ${y.toFixed(0)})"/>`);
    else shapes.push(`<polygon points="${x.toFixed(0)},${y.toFixed(0)} ${(x + size).toFixed(0)},${(y + size * 0.3).toFixed(0)} ${(x + size * 0.4).toFixed(0)},${(y + size).toFixed(0)}" fill="${fill}"/>`);
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<defs>
<linearGradient id="sky" x1="0" y1="0" x2="${r().toFixed(2)}" y2="1"><stop offset="0" stop-color="${hsl(hue, 70, 25 + r() * 30)}"/><stop offset="1" stop-color="${hsl(hue + 40 + r() * 60, 80, 70 + r() * 20)}"/></linearGradient>
<radialGradient id="sun"><stop offset="0" stop-color="${hsl(40 + r() * 20, 100, 90)}"/><stop offset="1" stop-color="${hsl(20 + r() * 30, 100, 55)}" stop-opacity="0"/></radialGradient>
</defs>
<rect width="100%" height="100%" fill="url(#sky)"/>
<circle cx="${(r() * width).toFixed(0)}" cy="${(r() * height * 0.4).toFixed(0)}" r="${(height * (0.12 + r() * 0.15)).toFixed(0)}" fill="url(#sun)"/>
${shapes.join('\n')}
</svg>`;
}

export interface GeneratedImage {
  name: string;
  width: number;
  height: number;
  data: Buffer;
}

/** Image `index` (0-based) of the demo set: JPEG, size cycling through 640x480 .. 1920x1080 with small variations. */
export async function photo(index: number): Promise<GeneratedImage> {
  const [w0, h0] = SIZES[index % SIZES.length]!;
  // Vary sizes a little within the range so that no two images share both size and content.
  const shrink = Math.floor(index / SIZES.length) * 8;
  const width = Math.max(640, w0 - shrink);
  const height = Math.max(480, h0 - Math.round((shrink * h0) / w0));
  const data = await sharp(Buffer.from(photoSvg(index, width, height))).jpeg({ quality: 85 }).toBuffer();
  return { name: `photo-${String(index + 1).padStart(3, '0')}.jpg`, width, height, data };
}

/** Generates `count` images with bounded concurrency. */
export async function photos(count: number, onEach?: (img: GeneratedImage) => void): Promise<GeneratedImage[]> {
  const out: GeneratedImage[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 2 }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await photo(i);
        onEach?.(out[i]!);
      }
    }),
  );
  return out;
}
