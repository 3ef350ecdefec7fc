/**
 * Template descriptors and template fields of the kernel's measurement list
 * (formats.md §1.5, §1.6; security/integrity/ima/ima_template.c `builtin_templates[]` and
 * `supported_fields[]`).
 *
 * A list entry carries a template NAME which is NOT covered by the template digest (§1.7): it is
 * untrusted metadata that only tells a parser how to split the hashed data into fields. A custom
 * `ima_template_fmt=` template has an empty descriptor name and the list shows its format string.
 */

/** The kernel's template field ids (`supported_fields[]`). */
export const FIELD_IDS = Object.freeze([
  'd',
  'n',
  'd-ng',
  'd-ngv2',
  'n-ng',
  'sig',
  'buf',
  'd-modsig',
  'modsig',
  'evmsig',
  'xattrnames',
  'xattrlengths',
  'xattrvalues',
  'iuid',
  'igid',
  'imode',
] as const);

/** One template field id. */
export type FieldId = (typeof FIELD_IDS)[number];

/**
 * How a field's data is rendered in the ascii list (ima_template_lib.c `enum data_formats`,
 * formats.md §1.3).
 */
export type FieldFormat = 'digest' | 'digest-algo' | 'digest-type-algo' | 'string' | 'hex' | 'uint';

/** Data format of each field id. */
export const FIELD_FORMAT: Readonly<Record<FieldId, FieldFormat>> = Object.freeze({
  d: 'digest',
  n: 'string',
  'd-ng': 'digest-algo',
  'd-ngv2': 'digest-type-algo',
  'n-ng': 'string',
  sig: 'hex',
  buf: 'hex',
  'd-modsig': 'digest-algo',
  modsig: 'hex',
  evmsig: 'hex',
  xattrnames: 'string',
  xattrlengths: 'hex',
  xattrvalues: 'hex',
  iuid: 'uint',
  igid: 'uint',
  imode: 'uint',
});

/** A template: its descriptor name ('' for custom formats) and ordered field ids. */
export interface TemplateDescriptor {
  /** descriptor name as printed in the list; '' for a custom `ima_template_fmt` template */
  readonly name: string;
  /** `|`-separated format string */
  readonly fmt: string;
  readonly fields: readonly FieldId[];
  /** the legacy `ima` template with its special binary layout and digest (formats.md §1.4) */
  readonly legacy: boolean;
}

/** Maximum fields in a custom format (IMA_TEMPLATE_NUM_FIELDS_MAX). */
export const MAX_TEMPLATE_FIELDS = 15;

const isFieldId = (s: string): s is FieldId => (FIELD_IDS as readonly string[]).includes(s);

const desc = (name: string, fmt: string): TemplateDescriptor =>
  Object.freeze({
    name,
    fmt,
    fields: Object.freeze(fmt.split('|').filter(isFieldId)),
    legacy: name === 'ima',
  });

/** The kernel's named templates (`builtin_templates[]`). */
export const NAMED_TEMPLATES: readonly TemplateDescriptor[] = Object.freeze([
  desc('ima', 'd|n'),
  desc('ima-ng', 'd-ng|n-ng'),
  desc('ima-ngv2', 'd-ngv2|n-ng'),
  desc('ima-sig', 'd-ng|n-ng|sig'),
  desc('ima-sigv2', 'd-ngv2|n-ng|sig'),
  desc('ima-buf', 'd-ng|n-ng|buf'),
  desc('ima-modsig', 'd-ng|n-ng|sig|d-modsig|modsig'),
  desc('evm-sig', 'd-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode'),
]);

const BY_NAME: ReadonlyMap<string, TemplateDescriptor> = new Map(NAMED_TEMPLATES.map((t) => [t.name, t]));

/**
 * Parse a custom `ima_template_fmt` string, or undefined when the kernel would reject it
 * (unknown field id, more than 15 fields, empty component).
 */
export function parseTemplateFmt(fmt: string): TemplateDescriptor | undefined {
  const parts = fmt.split('|');
  if (parts.length === 0 || parts.length > MAX_TEMPLATE_FIELDS) return undefined;
  if (!parts.every(isFieldId)) return undefined;
  // The kernel rejects `d`/`n` in custom formats only indirectly (ima_template_fmt works with them),
  // but the legacy binary layout applies to the named `ima` template alone.
  return Object.freeze({ name: '', fmt, fields: Object.freeze(parts as FieldId[]), legacy: false });
}

/**
 * The descriptor an entry's template name denotes: a named template, else the name read as a custom
 * format string, else undefined (unknown template: the entry still replays, its data is not
 * interpreted).
 */
export function lookupTemplate(name: string): TemplateDescriptor | undefined {
  return BY_NAME.get(name) ?? parseTemplateFmt(name);
}
