/**
 * Builds single executables of Harvey for each release target into `dist/`, with the same
 * permissions as `deno task harvey`. `deno compile` downloads Deno's runtime (`denort`) for each
 * target once; without network access to Deno's download servers it fails.
 *
 * Usage: `deno task compile [TARGET…]` (default: all four).
 *
 * @module
 */

const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
];

const PERMISSIONS = [
  "--no-prompt",
  // The young generation of the heap at most 2 MiB a half, as in the harvey task (a stream
  // otherwise grows it to 16 MiB, for no speed).
  "--v8-flags=--max-semi-space-size=2",
  "--allow-read",
  "--allow-write",
  "--allow-net",
  "--allow-env",
  "--allow-run",
  "--allow-sys=hostname,osRelease,homedir,uid,gid",
];

const targets = Deno.args.length ? Deno.args : TARGETS;
let failed = 0;
for (const target of targets) {
  if (!TARGETS.includes(target)) {
    console.error(`Unknown target ${target}; expected one of: ${TARGETS.join(", ")}`);
    Deno.exit(2);
  }
  const output = `dist/harvey-${target}`;
  console.log(`Compiling ${output}…`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    // deno compile does not find on its own the search's Worker module, nor the modules loaded
    // on first use by a URL (src/util/lazy_import.ts): all of src/ goes in.
    args: [
      "compile",
      ...PERMISSIONS,
      "--include",
      "src/",
      "--target",
      target,
      "--output",
      output,
      "main.ts",
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    failed++;
    console.error(`✗ ${target} failed (deno compile needs to download denort for it once)`);
  }
}
Deno.exit(failed ? 1 : 0);
