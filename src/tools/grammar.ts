/**
 * The grammar of a constrained text-mode reply on llama.cpp backends (GBNF, as llama-server's
 * `grammar` field and llama-completion's `--grammar-file` take it): prose that never contains
 * `<tool_call>`, optionally followed by exactly one Hermes call
 * `<tool_call>{"name": "…", "arguments": {…}}</tool_call>` of a known tool, whose arguments
 * match its schema (required ones present, each of its type, in the schema's order), and
 * nothing after it. A model sampled under it cannot name an unknown tool or write broken JSON.
 *
 * @module
 */
import type { ArgSpec, ArgsSchema } from "./args.ts";
import type { ToolSpec } from "../types.ts";

/** The opening tag of a call; prose may not contain it. */
export const CALL_OPEN = "<tool_call>";

/** A GBNF literal: `"…"` with `"` and `\` escaped. */
function literal(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A JSON string literal `"text"` as a GBNF literal. */
function jsonKey(text: string): string {
  return literal(JSON.stringify(text));
}

/** A rule name from a tool or argument name (GBNF names are letters, digits and dashes). */
function ruleName(...parts: string[]): string {
  return parts.map((p) => p.toLowerCase().replace(/[^a-z0-9]+/g, "-")).join("-")
    .replace(/^-+|-+$/g, "");
}

/**
 * Prose without the sequence `<tool_call>`: the states of a KMP automaton for the tag written
 * as rules. `qK` has matched K characters of the tag and must break off (a character that
 * does not go on with it, or a `<` that starts over); `tK` is the same at the end of the
 * prose, where it may also simply stop. The tag has no `<` after its first character.
 */
function proseRules(): string[] {
  const tag = CALL_OPEN;
  const n = tag.length;
  const rules = [`prose ::= ( [^<] | "<" q1 )* ( "<" t1 )?`];
  const cls = (c: string) => `[^${/[\]\\^-]/.test(c) ? `\\${c}` : c}<]`;
  for (let k = 1; k < n; k++) {
    const c = tag[k];
    const on = k < n - 1;
    rules.push(
      `q${k} ::= ${cls(c)} | ${on ? `${literal(c)} q${k + 1} | ` : ""}"<" q1`,
      `t${k} ::= ( ${on ? `${literal(c)} t${k + 1} | ` : ""}"<" t1 )?`,
    );
  }
  return rules;
}

const VALUE_RULES: Record<ArgSpec["type"], string> = {
  string: "string",
  integer: "integer",
  boolean: "boolean",
};

/** `"name" ws ":" ws value` of one argument. */
function member(name: string, arg: ArgSpec): string {
  return `${jsonKey(name)} ws ":" ws ${VALUE_RULES[arg.type] ?? "string"}`;
}

/**
 * The arguments object of a tool: the required members in schema order, then each optional
 * one or none, in schema order, with the commas right however many are left out.
 */
function argumentsRule(spec: ToolSpec): string {
  const schema = spec.parameters as unknown as ArgsSchema;
  const entries = Object.entries(schema.properties ?? {});
  const required = entries.filter(([n]) => schema.required?.includes(n));
  const optional = entries.filter(([n]) => !schema.required?.includes(n));
  const opt = optional.map(([n, a]) => member(n, a));
  const sep = `ws "," ws`;
  let body: string;
  if (required.length) {
    body = [
      required.map(([n, a]) => member(n, a)).join(` ${sep} `),
      ...opt.map((m) => `( ${sep} ${m} )?`),
    ].join(" ");
  } else if (opt.length) {
    // No member is required: the first present one carries no comma.
    const alts = opt.map((m, i) =>
      [m, ...opt.slice(i + 1).map((rest) => `( ${sep} ${rest} )?`)].join(" ")
    );
    body = `( ${alts.map((a) => `( ${a} )`).join(" | ")} )?`;
  } else body = "";
  return `"{" ws ${body ? `${body} ws ` : ""}"}"`;
}

/**
 * The GBNF grammar of a text-mode reply for `specs`.
 *
 * @example
 * ```ts
 * const gbnf = toolCallGrammar([readFileTool.spec]);
 * await client.chat(messages, { onToken, grammar: gbnf });
 * ```
 */
export function toolCallGrammar(specs: readonly ToolSpec[]): string {
  const names = specs.map((s) => ruleName("call", s.name));
  const lines = [
    "root ::= prose call?",
    ...proseRules(),
    `call ::= ${literal(CALL_OPEN)} ws "{" ws ${jsonKey("name")} ws ":" ws ( ${
      names.join(" | ")
    } ) ws "}" ws ${literal("</tool_call>")}`,
    ...specs.map((s, i) =>
      `${names[i]} ::= ${jsonKey(s.name)} ws "," ws ${jsonKey("arguments")} ws ":" ws ${
        argumentsRule(s)
      }`
    ),
    `string ::= "\\"" char* "\\""`,
    `char ::= [^"\\\\\\x00-\\x1f] | "\\\\" ( ["\\\\/bfnrt] | "u" hex hex hex hex )`,
    "hex ::= [0-9a-fA-F]",
    `integer ::= "-"? ( "0" | [1-9] [0-9]? [0-9]? [0-9]? [0-9]? [0-9]? [0-9]? [0-9]? [0-9]? )`,
    `boolean ::= "true" | "false"`,
    `ws ::= [ \\n]?`,
  ];
  return `${lines.join("\n")}\n`;
}
