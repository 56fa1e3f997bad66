/**
 * Harvey: a terminal coding agent for local language models.
 *
 * @module
 */
import { run } from "./src/cli.ts";

if (import.meta.main) {
  const code = await run(Deno.args);
  Deno.exit(code);
}
