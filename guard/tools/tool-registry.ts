// The tool allow-list: tools/*.yaml, read and validated once at start-up. Each tool's argument
// schema (JSON Schema) is compiled here and checked on every call; a bad file stops the start,
// naming the file and the field. A tool whose endpoint names a missing environment variable is
// listed as unavailable, and calling it is refused (fail closed).
import { Ajv, type ValidateFunction } from 'ajv';
import { deepFreeze } from '../../contract/deep-freeze.ts';
import { ToolDefinition } from '../../contract/tool.ts';
import { readDeclarations } from '../declaration-files.ts';

export interface Tool {
  readonly definition: ToolDefinition;
  /** The handler's endpoint with ${VARS} filled in; null when one is missing. */
  readonly url: string | null;
  readonly available: boolean;
  /** Problems with these arguments, or [] when they fit the schema. */
  checkArgs(args: unknown): string[];
}

export type ToolSet = ReadonlyMap<string, Tool>;

export class ToolError extends Error {
  override name = 'ToolError';
}

const expand = (text: string, env: Record<string, string | undefined>): string | null => {
  let missing = false;
  const out = text.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_, name: string) => {
    const v = env[name];
    if (!v) missing = true;
    return v ?? '';
  });
  return missing ? null : out;
};

function compile(ajv: Ajv, schema: Record<string, unknown>, path: string): ValidateFunction {
  if (schema.type !== 'object')
    throw new ToolError(`${path}: field "args": the argument schema must be {type: object, ...}`);
  try {
    return ajv.compile({ additionalProperties: false, ...schema });
  } catch (e) {
    throw new ToolError(`${path}: field "args": not a valid JSON Schema: ${(e as Error).message}`);
  }
}

export async function loadTools(dir: string, env: Record<string, string | undefined>): Promise<ToolSet> {
  // strict: unknown keywords in a schema are mistakes; allErrors: tell the agent everything at once.
  const ajv = new Ajv({ strict: true, allErrors: true });
  const tools = new Map<string, Tool>();
  for (const { path, value: definition } of await readDeclarations(dir, ToolDefinition, (m) => new ToolError(m))) {
    const validate = compile(ajv, definition.args, path);
    const url = definition.handler.type === 'http' ? expand(definition.handler.url, env) : null;
    const credentials = definition.handler.type === 'http' ? Object.values(definition.handler.headers) : [];
    const available =
      definition.handler.type === 'http_fetch' || (url !== null && credentials.every((c) => !!env[c.env]));
    tools.set(
      definition.name,
      Object.freeze({
        definition: deepFreeze(definition),
        url,
        available,
        checkArgs(args: unknown) {
          if (validate(args)) return [];
          return (validate.errors ?? []).map((e) =>
            e.keyword === 'additionalProperties'
              ? `args${e.instancePath.replaceAll('/', '.')} has an unknown property "${(e.params as { additionalProperty: string }).additionalProperty}"`
              : `args${e.instancePath.replaceAll('/', '.')} ${e.message ?? 'is invalid'}`,
          );
        },
      }),
    );
  }
  return tools;
}
