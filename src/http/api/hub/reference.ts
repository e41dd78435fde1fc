/**
 * The reference part of docs/api.md, generated from the OpenAPI document:
 * one section per tag, one entry per operation (method, path, who, body,
 * answer). scripts/api-docs.mjs writes it between the markers of
 * docs/api.md; a test checks that the file holds exactly this.
 */

export const REFERENCE_START = '<!-- reference: generated from the OpenAPI document by scripts/api-docs.mjs; do not edit by hand -->';
export const REFERENCE_END = '<!-- end of reference -->';

type Json = Record<string, unknown>;

function authText(security: Json[] | undefined): string {
  if (!security || security.length === 0) return 'no credentials';
  return security.some((s) => Object.keys(s).length === 0) ? 'credentials optional' : 'credentials required';
}

function propertiesText(schema: Json | undefined): string {
  const props = (schema?.properties ?? {}) as Record<string, Json>;
  const required = new Set((schema?.required ?? []) as string[]);
  const names = Object.keys(props);
  if (!names.length) return '';
  return names.map((n) => `\`${n}\`${required.has(n) ? '' : '?'}`).join(', ');
}

export function apiReference(doc: Json): string {
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const byTag = new Map<string, string[]>();
  for (const [path, item] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = ((op.tags as string[]) ?? ['other'])[0]!;
      const lines = [`- **\`${method.toUpperCase()} ${path}\`** (\`${String(op.operationId)}\`): ${String(op.summary)}. *${authText(op.security as Json[] | undefined)}.*`];
      const params = ((op.parameters ?? []) as Json[]).filter((p) => p.in === 'query').map((p) => `\`${String(p.name)}\``);
      if (params.length) lines.push(`  Query: ${params.join(', ')}.`);
      const body = ((op.requestBody as Json | undefined)?.content as Record<string, { schema: Json }> | undefined)?.['application/json']?.schema;
      const bodyText = propertiesText(body);
      if (bodyText) lines.push(`  Body: ${bodyText}.`);
      const responses = op.responses as Record<string, Json>;
      const success = Object.keys(responses).find((s) => s.startsWith('2'))!;
      const answer = ((responses[success]!.content as Record<string, { schema: Json }> | undefined)?.['application/json']?.schema) as Json | undefined;
      const answerText = propertiesText(answer);
      const errors = Object.keys(responses).filter((s) => !s.startsWith('2'));
      lines.push(`  Answer: ${success}${answerText ? ` with ${answerText}` : ''}; errors ${errors.join(', ')}.`);
      const list = byTag.get(tag) ?? [];
      list.push(lines.join('\n'));
      byTag.set(tag, list);
    }
  }
  const out = [REFERENCE_START, ''];
  for (const [tag, entries] of byTag) out.push(`### ${tag}`, '', ...entries, '');
  out.push(REFERENCE_END);
  return out.join('\n');
}
