/**
 * `deno task install`: puts a `harvey` launcher on PATH (in `$DENO_INSTALL_ROOT/bin`, default
 * `~/.deno/bin`, where `deno install -g` puts its own). The launcher runs this checkout's
 * `main.ts` with exactly the permissions of `deno task harvey`, with the first Deno it finds:
 * `deno` on PATH, else the Deno that ran this install (while it is still there, e.g. in npx's
 * cache), else `npx -y deno@VERSION` — so it works on a machine with only Node.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The environment assignments and `deno run` flags of the `harvey` task in `deno.json`. */
export function harveyTaskFlags(root = ROOT): { env: Record<string, string>; flags: string[] } {
  const config = JSON.parse(Deno.readTextFileSync(join(root, "deno.json")));
  const words: string[] = String(config.tasks?.harvey ?? "").split(/\s+/).filter(Boolean);
  const env: Record<string, string> = {};
  while (/^[A-Z_][A-Z0-9_]*=/.test(words[0] ?? "")) {
    const [name, ...value] = words.shift()!.split("=");
    env[name] = value.join("=");
  }
  if (words[0] !== "deno" || words[1] !== "run" || words.at(-1) !== "main.ts") {
    throw new Error(`The harvey task in deno.json is not "deno run FLAGS main.ts"`);
  }
  return { env, flags: words.slice(2, -1) };
}

/** Quotes `s` for a POSIX shell. */
function q(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The text of the launcher for the checkout at `root`. */
export function launcherScript(opts: { root: string; deno: string; version: string }): string {
  const { env, flags } = harveyTaskFlags(opts.root);
  const run = ["run", ...flags].map(q).join(" ");
  return [
    "#!/bin/sh",
    `# Harvey, installed by \`deno task install\` from ${opts.root}.`,
    "# Runs with the permissions of `deno task harvey`; without deno on PATH it uses the Deno",
    "# that installed it, or Deno from npm (needs Node, and the network the first time).",
    "unset RUST_BACKTRACE",
    ...Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`),
    `main=${q(join(opts.root, "main.ts"))}`,
    "if command -v deno >/dev/null 2>&1; then exec deno " + run + ' "$main" "$@"; fi',
    `if [ -x ${q(opts.deno)} ]; then exec ${q(opts.deno)} ${run} "$main" "$@"; fi`,
    "if command -v npx >/dev/null 2>&1; then",
    `  exec npx -y ${q(`deno@${opts.version}`)} ${run} "$main" "$@"`,
    "fi",
    'echo "harvey: neither deno nor npx was found on PATH; install Node (for npx) or Deno ' +
    `${opts.version}" >&2`,
    "exit 127",
    "",
  ].join("\n");
}

async function main(): Promise<number> {
  const home = Deno.env.get("HOME") ?? "";
  const bin = join(Deno.env.get("DENO_INSTALL_ROOT") || join(home, ".deno"), "bin");
  await Deno.mkdir(bin, { recursive: true });
  const target = join(bin, "harvey");
  const text = launcherScript({ root: ROOT, deno: Deno.execPath(), version: Deno.version.deno });
  // Written beside the target, then renamed: a launcher that is running is never half-written.
  const tmp = `${target}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmp, text, { mode: 0o755 });
  await Deno.chmod(tmp, 0o755);
  await Deno.rename(tmp, target);
  console.log(`✓ Installed ${target}`);
  const onPath = (Deno.env.get("PATH") ?? "").split(":").includes(bin);
  if (!onPath) {
    console.log(`  ${bin} is not on your PATH; add it, e.g.: export PATH="${bin}:$PATH"`);
  }
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (err) {
    console.error(`✗ ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}
