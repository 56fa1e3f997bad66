/**
 * The environment Harvey hands to the programs it starts (model servers, `/run` and `!`
 * commands): an allowlist, so API keys and tokens in the user's shell never reach a child
 * process.
 *
 * @module
 */
import { SECRET_NAME } from "./redact.ts";

const KEEP = ["PATH", "HOME", "USER", "SHELL", "TERM", "LANG", "PWD"];
const KEEP_PREFIXES = ["LC_", "OLLAMA_", "HARVEY_"];

function filterEnv(env: Record<string, string>, keep: Set<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const allowed = keep.has(name) || KEEP_PREFIXES.some((p) => name.startsWith(p));
    if (allowed && !SECRET_NAME.test(name)) out[name] = value;
  }
  return out;
}

/**
 * For model servers: keeps only `PATH`, `HOME`, `USER`, `SHELL`, `TERM`, `LANG`, `LC_*`,
 * `PWD`, `TMPDIR`, `OLLAMA_*` and `HARVEY_*` from `env`, and drops any of those whose name
 * looks like a secret (`HARVEY_API_KEY`, `OLLAMA_TOKEN`…). Use it with `clearEnv: true`.
 *
 * @example
 * ```ts
 * childEnv({ PATH: "/usr/bin", OPENAI_API_KEY: "sk-…", HF_TOKEN: "hf_…" });
 * // { PATH: "/usr/bin" }
 * ```
 */
export function childEnv(env: Record<string, string>): Record<string, string> {
  return filterEnv(env, new Set([...KEEP, "TMPDIR"]));
}

/**
 * For `/run` and `!` commands: only `PATH`, `HOME`, `USER`, `SHELL`, `TERM`, `LANG`, `LC_*`,
 * `PWD`, `OLLAMA_*` and `HARVEY_*`, secret-looking names dropped, and `PWD` set to `cwd` (the
 * folder the command runs in) when given. Use it with `clearEnv: true`.
 *
 * @example
 * ```ts
 * commandEnv({ PATH: "/usr/bin", TMPDIR: "/tmp", HARVEY_API_KEY: "k" }, { cwd: "/w" });
 * // { PATH: "/usr/bin", PWD: "/w" }
 * ```
 */
export function commandEnv(
  env: Record<string, string>,
  opts: { cwd?: string } = {},
): Record<string, string> {
  const out = filterEnv(env, new Set(KEEP));
  if (opts.cwd) out.PWD = opts.cwd;
  return out;
}
