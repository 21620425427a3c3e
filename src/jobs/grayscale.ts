import { sharp, type FormatEnum, type Metadata } from './sharp.js';
import { SlurmkitError } from '../util/errors.js';

const KEEPABLE = new Set(['jpeg', 'png', 'webp', 'tiff', 'gif', 'avif', 'heif']);

export interface ConvertResult {
  format: string;
  width: number;
  height: number;
  channels: number;
}

/**
 * Converts an image to true single-channel luminance, keeping its format and size.
 * Throws a SlurmkitError whose message is the per-blob reason (empty, not an image, ...).
 */
export async function grayscale(input: Buffer): Promise<{ data: Buffer; info: ConvertResult }> {
  if (input.length === 0) throw new SlurmkitError('SPEC_INVALID', 'empty blob (0 bytes)');
  let meta: Metadata;
  try {
    meta = await sharp(input).metadata();
  } catch (err) {
    throw new SlurmkitError('SPEC_INVALID', `not an image: ${(err as Error).message}`);
  }
  const format: string = meta.format ?? 'unknown';
  if (!KEEPABLE.has(format)) throw new SlurmkitError('SPEC_INVALID', `unsupported image format: ${format}`);
  try {
    const { data, info } = await sharp(input, { failOn: 'error' })
      .rotate() // honour EXIF orientation so the result looks like the original
      .toColourspace('b-w')
      .toFormat(format as keyof FormatEnum)
      .toBuffer({ resolveWithObject: true });
    return { data, info: { format: info.format, width: info.width, height: info.height, channels: info.channels } };
  } catch (err) {
    throw new SlurmkitError('SPEC_INVALID', `corrupt image: ${(err as Error).message}`);
  }
}

/** True when an image has one channel, or its channels are identical (luminance only). */
export async function isGrayscale(data: Buffer): Promise<boolean> {
  const meta = await sharp(data).metadata();
  if (meta.channels === 1 || (meta.channels === 2 && meta.hasAlpha)) return true;
  const stats = await sharp(data).stats();
  const [r, g, b] = stats.channels;
  return !!r && !!g && !!b && Math.abs(r.mean - g.mean) < 0.5 && Math.abs(g.mean - b.mean) < 0.5;
}
