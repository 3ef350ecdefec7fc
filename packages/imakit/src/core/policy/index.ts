/** The IMA policy language (formats.md §5): scanner, parser, validation, read-back form, built-ins, boot parameters, matching. */
export * from './ast.ts';
export * from './tokenize.ts';
export * from './parse.ts';
export * from './validate.ts';
export * from './format.ts';
export * from './builtin.ts';
export * from './boot-params.ts';
export * from './match.ts';
