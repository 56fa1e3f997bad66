/**
 * A racing swapper for the TOCTOU tests: another process that keeps replacing a file or a
 * folder inside the workspace with a symlink to something outside, and back, until killed.
 *
 * `deno run -A test/swapper.ts file PATH OUTSIDE_FILE` — PATH alternates between a regular
 * file (its content as it was at the start) and a symlink to OUTSIDE_FILE, each by an atomic
 * rename.
 * `deno run -A test/swapper.ts folder PATH OUTSIDE_DIR` — the folder PATH alternates with a
 * symlink to OUTSIDE_DIR.
 *
 * Prints `ready` once it has swapped at least once.
 *
 * @module
 */
import { dirname, join } from "node:path";

/** Starts the swapper in a child process; `stop()` kills it and waits. */
export async function startSwapper(
  mode: "file" | "folder",
  path: string,
  outside: string,
): Promise<{ stop: () => Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", new URL(import.meta.url).pathname, mode, path, outside],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  if (new TextDecoder().decode(first.value) !== "ready\n") throw new Error("swapper did not start");
  reader.releaseLock();
  let stopped: Promise<void> | undefined;
  return {
    stop: () =>
      stopped ??= (async () => {
        child.kill("SIGTERM");
        await child.stdout.cancel().catch(() => {});
        await child.status;
      })(),
  };
}

/** Runs `step`, ignoring what the program under test did meanwhile (it may create PATH). */
function attempt(step: () => void): void {
  try {
    step();
  } catch {
    // the other side changed the folder: go on swapping
  }
}

if (import.meta.main) {
  const [mode, path, outside] = Deno.args;
  const hidden = (name: string) => join(dirname(path), `.swap-${name}`);
  let stop = false;
  Deno.addSignalListener("SIGTERM", () => stop = true);
  const content = mode === "file" ? Deno.readFileSync(path) : undefined;
  let announced = false;
  while (!stop) {
    if (content) {
      attempt(() => Deno.symlinkSync(outside, hidden("link")));
      attempt(() => Deno.renameSync(hidden("link"), path));
      attempt(() => Deno.writeFileSync(hidden("file"), content));
      attempt(() => Deno.renameSync(hidden("file"), path));
    } else {
      attempt(() => Deno.renameSync(path, hidden("real")));
      // The program under test may have made a new folder at PATH meanwhile: move it aside.
      attempt(() => Deno.removeSync(path, { recursive: true }));
      attempt(() => Deno.symlinkSync(outside, path));
      attempt(() => Deno.removeSync(path));
      attempt(() => Deno.renameSync(hidden("real"), path));
    }
    if (!announced) {
      Deno.stdout.writeSync(new TextEncoder().encode("ready\n"));
      announced = true;
    }
    // Let the event loop see SIGTERM now and then.
    if (Math.random() < 0.01) await new Promise((r) => setTimeout(r, 0));
  }
  // Leave PATH as it was at the start: a regular file or a folder.
  attempt(() => Deno.lstatSync(path).isSymlink && Deno.removeSync(path));
  if (!content) attempt(() => Deno.renameSync(hidden("real"), path));
}
