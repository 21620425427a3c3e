/**
 * Slurm hostlist expressions: "c[1-3,5],gpu[01-02]" <-> ["c1","c2","c3","c5","gpu01","gpu02"].
 * Follows Slurm's own rules (src/common/hostlist.c): the width of a range is the length of
 * its lower bound as written, so "n[01-10]" pads to two digits and "n[8-10]" does not.
 * Pure; the same code serves the spec (partition node lists) and parsing of Slurm's output.
 */

export class HostlistError extends Error {
  override readonly name = 'HostlistError';
}

/** Guards against "n[1-999999999]" exhausting memory. */
const DEFAULT_LIMIT = 100_000;

/**
 * Expands an expression into host names, in the order written (duplicates kept).
 * Expressions are separated by commas or whitespace outside brackets; several bracket
 * groups in one expression ("r[1-2]n[1-2]") expand to their cartesian product, as Slurm does.
 */
export function expandHostlist(expr: string, limit = DEFAULT_LIMIT): string[] {
  const hosts: string[] = [];
  for (const part of splitTopLevel(expr)) {
    let names = [''];
    for (const seg of segments(part)) {
      const values = typeof seg === 'string' ? [seg] : seg;
      if (names.length * values.length + hosts.length > limit) {
        throw new HostlistError(`"${expr}" names more than ${limit} hosts`);
      }
      names = names.flatMap((n) => values.map((v) => n + v));
    }
    hosts.push(...names);
  }
  if (hosts.length === 0) throw new HostlistError('empty host list');
  return hosts;
}

/** Splits at commas and whitespace that are not inside brackets. */
function splitTopLevel(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of expr) {
    if (ch === '[') {
      if (depth > 0) throw new HostlistError(`"${expr}": nested "[" is not allowed`);
      depth++;
    } else if (ch === ']') {
      if (depth === 0) throw new HostlistError(`"${expr}": "]" without a matching "["`);
      depth--;
    }
    if (depth === 0 && (ch === ',' || /\s/.test(ch))) {
      if (current) parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (depth > 0) throw new HostlistError(`"${expr}": "[" without a matching "]"`);
  if (current) parts.push(current);
  return parts;
}

/** Literal text stays a string; each bracket group becomes the list of numbers it stands for. */
function segments(part: string): (string | string[])[] {
  const out: (string | string[])[] = [];
  const re = /\[([^\]]*)\]/g;
  let last = 0;
  for (let m = re.exec(part); m; m = re.exec(part)) {
    if (m.index > last) out.push(part.slice(last, m.index));
    out.push(expandRanges(m[1] ?? '', part));
    last = re.lastIndex;
  }
  if (last < part.length) out.push(part.slice(last));
  return out;
}

function expandRanges(body: string, part: string): string[] {
  const values: string[] = [];
  for (const range of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(range.trim());
    if (!m) throw new HostlistError(`"${part}": "${range}" is not a number or a range like 1-4`);
    const lo = m[1] ?? '';
    const hi = m[2] ?? lo;
    const [from, to] = [Number(lo), Number(hi)];
    if (to < from) throw new HostlistError(`"${part}": range ${range} goes backwards`);
    if (to - from >= DEFAULT_LIMIT) throw new HostlistError(`"${part}": range ${range} is too large`);
    for (let n = from; n <= to; n++) values.push(String(n).padStart(lo.length, '0'));
  }
  return values;
}

/**
 * Compresses host names into the shortest usual hostlist: names sharing a prefix and ending
 * in numbers are bracketed ("c[1-3,5]"); a single name stays bare ("c1"). Duplicates are
 * dropped. Prefixes keep the order of their first appearance, numbers are sorted within each.
 */
export function compressHostlist(names: readonly string[]): string {
  // Keyed so that a bare name ("c") and a numbered prefix ("c" of "c1") stay apart.
  const groups = new Map<string, { prefix: string; items: Numbered[] }>();
  for (const name of new Set(names)) {
    const m = /^(.*?)(\d+)$/.exec(name);
    if (!m) {
      groups.set(`=${name}`, { prefix: name, items: [] });
      continue;
    }
    const [prefix, digits] = [m[1] ?? '', m[2] ?? ''];
    const group = groups.get(`#${prefix}`) ?? { prefix, items: [] };
    group.items.push({ num: Number(digits), digits });
    groups.set(`#${prefix}`, group);
  }
  return [...groups.values()]
    .map(({ prefix, items }) => {
      if (items.length === 0) return prefix;
      const ranges = toRanges(items.sort((a, b) => a.num - b.num || a.digits.length - b.digits.length));
      return items.length === 1 ? prefix + ranges[0] : `${prefix}[${ranges.join(',')}]`;
    })
    .join(',');
}

interface Numbered {
  num: number;
  digits: string;
}

/** Consecutive numbers written alike join a run: "09","10" do ("[09-10]"); "9","010" do not. */
function toRanges(sorted: Numbered[]): string[] {
  const ranges: string[] = [];
  const padding = (d: string) => (d.length > 1 && d.startsWith('0') ? d.length : 0);
  let start: Numbered | undefined;
  let prev: Numbered | undefined;
  for (const item of sorted) {
    if (start && prev && item.num === prev.num + 1 && String(item.num).padStart(padding(start.digits), '0') === item.digits) {
      prev = item;
      continue;
    }
    if (start && prev) ranges.push(start === prev ? start.digits : `${start.digits}-${prev.digits}`);
    start = prev = item;
  }
  if (start && prev) ranges.push(start === prev ? start.digits : `${start.digits}-${prev.digits}`);
  return ranges;
}
