import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { grayscale, isGrayscale } from './grayscale.js';
import { photo, photos } from './images.js';

test('demo photos are deterministic, colorful and all different, from 640x480 to 1920x1080', async () => {
  const set = await photos(49);
  assert.equal(set.length, 49);
  const hashes = new Set(set.map((p) => createHash('sha256').update(p.data).digest('hex')));
  assert.equal(hashes.size, 49, 'no two alike');
  assert.deepEqual((await photo(5)).data, set[5]!.data, 'deterministic');
  for (const p of set) {
    assert.ok(p.width >= 640 && p.width <= 1920 && p.height >= 480 && p.height <= 1080, `${p.name} ${p.width}x${p.height}`);
    assert.equal(await isGrayscale(p.data), false, `${p.name} is in color`);
  }
  assert.ok(new Set(set.map((p) => `${p.width}x${p.height}`)).size >= 8);
});

test('grayscale keeps format and size and yields one channel', async () => {
  const p = await photo(3);
  const { data, info } = await grayscale(p.data);
  const meta = await sharp(data).metadata();
  assert.equal(meta.format, 'jpeg');
  assert.equal(meta.width, p.width);
  assert.equal(meta.height, p.height);
  assert.equal(meta.channels, 1);
  assert.equal(info.channels, 1);
  const png = await sharp(p.data).png().toBuffer();
  const out = await grayscale(png);
  assert.equal((await sharp(out.data).metadata()).format, 'png');
  assert.equal(await isGrayscale(out.data), true);
});

test('empty, corrupt and non-image inputs give a reason', async () => {
  await assert.rejects(grayscale(Buffer.alloc(0)), /empty blob/);
  await assert.rejects(grayscale(Buffer.from('hello, I am a text file')), /not an image/);
  const p = await photo(1);
  await assert.rejects(grayscale(p.data.subarray(0, 2000)), /corrupt image|not an image/);
});
