/** The node's fstab: one `mount -a` applies every mount of a node, in order. Pure. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quickAckRoutes, renderFstab } from './init-script.js';

test('mounts become fstab lines in order: tmpfs with their own source, binds, ro, and mkdir only under an earlier tmpfs', () => {
  const fstab = renderFstab([
    { type: 'tmpfs', target: '/run', mode: '0755' },
    { type: 'bind', source: '/srv/cluster', target: '/run/slurmkit/cluster' },
    { type: 'bind', source: '/srv/etc/hosts', target: '/etc/hosts', readOnly: true },
    { type: 'tmpfs', target: '/etc/munge', mode: '0700', readOnly: true, sizeMiB: 1 },
  ]);
  assert.deepEqual(fstab.trim().split('\n').slice(1), [
    'slurmkit /run tmpfs mode=0755 0 0',
    '/srv/cluster /run/slurmkit/cluster none bind,X-mount.mkdir 0 0',
    '/srv/etc/hosts /etc/hosts none bind,ro 0 0',
    'slurmkit /etc/munge tmpfs ro,mode=0700,size=1m 0 0',
  ]);
});

test('spaces, tabs, newlines and backslashes in paths are written the way fstab(5) reads them', () => {
  const line = renderFstab([{ type: 'bind', source: '/var/lib/my home\\x', target: '/a\tb\nc' }]).trim().split('\n')[1];
  assert.equal(line, '/var/lib/my\\040home\\134x /a\\011b\\012c none bind 0 0');
  assert.equal(line!.split(/\s+/).length, 6, 'six fields');
});

test("delayed ACKs are off on the node's own address and on its whole subnet, whatever the prefix", () => {
  assert.deepEqual(quickAckRoutes('10.213.0.2', 24), [
    'route replace local 10.213.0.2 dev eth0 table local proto kernel scope host src 10.213.0.2 quickack 1',
    'route replace 10.213.0.0/24 dev eth0 proto kernel scope link src 10.213.0.2 quickack 1',
  ]);
  assert.match(quickAckRoutes('10.213.7.200', 22)[1]!, /^route replace 10\.213\.4\.0\/22 dev eth0 /);
  assert.match(quickAckRoutes('10.213.130.9', 16)[1]!, /^route replace 10\.213\.0\.0\/16 dev eth0 /);
});
