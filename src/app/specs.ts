/** A cluster's spec from a template or from spec text, with --name and --provider applied, validated at once. */
import { PROVIDER_TYPES } from '../spec/schema.js';
import { SlurmkitError } from '../util/errors.js';

export interface SpecSource {
  template?: string | undefined;
  /** Spec text (YAML), as read from a file or sent to the server. */
  text?: string | undefined;
  /** Where the text came from, for error messages (a file name). */
  source?: string | undefined;
  name?: string | undefined;
  provider?: string | undefined;
}

/** `provider`, checked before anything else is read; `field` names it in the error (--provider, or a request's field). */
export function checkProvider(value: string | undefined, field = '--provider'): string | undefined {
  if (value !== undefined && !(PROVIDER_TYPES as readonly string[]).includes(value)) {
    throw new SlurmkitError('USAGE', `${field} ${value}: no such provider`, { hint: `use one of: ${PROVIDER_TYPES.join(', ')}` });
  }
  return value;
}

// zod and yaml load lazily: most commands never read a spec, and loading them costs ~200 ms.
const specModules = async () => ({ ...(await import('../spec/templates.js')), ...(await import('../spec/load.js')) });

/** The default template is lab. */
export async function resolveClusterSpec(src: SpecSource, fields = { template: '--template', text: '-f/--file', provider: '--provider' }) {
  const { templateText, parseSpec } = await specModules();
  if (src.template !== undefined && src.text !== undefined) {
    throw new SlurmkitError('USAGE', `give either ${fields.template} or ${fields.text}, not both`);
  }
  const provider = checkProvider(src.provider, fields.provider);
  const template = src.template ?? 'lab';
  const text = src.text ?? (await templateText(template));
  const source = src.text !== undefined ? (src.source ?? 'spec') : `template ${template}`;
  const config = parseSpec(text, source, { ...(src.name === undefined ? {} : { name: src.name }), ...(provider ? { provider } : {}) });
  return { config, text };
}
