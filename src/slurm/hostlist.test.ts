import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compressHostlist, expandHostlist, HostlistError } from './hostlist.js';

test('expands ranges and single numbers', () => {
  assert.deepEqual(expandHostlist('c[1-3,5]'), ['c1', 'c2', 'c3', 'c5']);
  assert.deepEqual(expandHostlist('c7'), ['c7']);
});

test('keeps zero padding from the lower bound', () => {
  assert.deepEqual(expandHostlist('n[01-03]'), ['n01', 'n02', 'n03']);
  assert.deepEqual(expandHostlist('n[08-10]'), ['n08', 'n09', 'n10']);
  assert.deepEqual(expandHostlist('n[8-10]'), ['n8', 'n9', 'n10']);
});

test('expands several expressions separated by commas or spaces outside brackets', () => {
  assert.deepEqual(expandHostlist('c[1-2],gpu[1,3] head'), ['c1', 'c2', 'gpu1', 'gpu3', 'head']);
});

test('expands several bracket groups as a cartesian product, and suffixes', () => {
  assert.deepEqual(expandHostlist('r[1-2]n[1-2]'), ['r1n1', 'r1n2', 'r2n1', 'r2n2']);
  assert.deepEqual(expandHostlist('a[1-2]-ib'), ['a1-ib', 'a2-ib']);
});

test('rejects malformed expressions', () => {
  for (const bad of ['c[1-3', 'c1-3]', 'c[[1]]', 'c[3-1]', 'c[a-b]', 'c[]', '', ' , ', 'c[1-9999999]']) {
    assert.throws(() => expandHostlist(bad), HostlistError, bad);
  }
});

test('compresses runs, keeps singletons bare, prefixes in first-seen order', () => {
  assert.equal(compressHostlist(['c1', 'c2', 'c3', 'c5']), 'c[1-3,5]');
  assert.equal(compressHostlist(['c2', 'c4', 'c6', 'c8']), 'c[2,4,6,8]');
  assert.equal(compressHostlist(['c1']), 'c1');
  assert.equal(compressHostlist(['head']), 'head');
  assert.equal(compressHostlist(['gpu2', 'c3', 'gpu1', 'c1', 'c2']), 'gpu[1-2],c[1-3]');
  assert.equal(compressHostlist(['c', 'c1', 'c2']), 'c,c[1-2]');
  assert.equal(compressHostlist(['c1', 'c1', 'c2']), 'c[1-2]');
  assert.equal(compressHostlist([]), '');
});

test('compresses zero-padded names so that they expand back unchanged', () => {
  assert.equal(compressHostlist(['n01', 'n02', 'n10']), 'n[01-02,10]');
  assert.equal(compressHostlist(['n09', 'n10', 'n11']), 'n[09-11]');
  assert.equal(compressHostlist(['n9', 'n010']), 'n[9,010]');
});

test('compress then expand round-trips', () => {
  const cases = [
    ['c1', 'c2', 'c3', 'c5', 'c10', 'c11'],
    ['n001', 'n002', 'n099', 'n100', 'n101'],
    ['a1b', 'x', 'rack1-n3', 'rack1-n4', 'n1', 'n01'],
  ];
  for (const names of cases) {
    assert.deepEqual(new Set(expandHostlist(compressHostlist(names))), new Set(names));
  }
});
