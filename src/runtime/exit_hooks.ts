/**
 * Stopping Harvey's servers on the exit paths Harvey does not control directly: SIGTERM,
 * SIGHUP and `Deno.exit` (the `unload` event). SIGINT belongs to the REPL (it aborts a
 * reply), so it is not handled here.
 *
 * @module
 */

/** The part of the supervisor the hooks use. */
export interface Stoppable {
  stopAll(): Promise<void>;
  terminateAllNow(): void;
}

const SIGNAL_NUMBERS: Partial<Record<Deno.Signal, number>> = { SIGHUP: 1, SIGTERM: 15 };

/**
 * On SIGTERM or SIGHUP: stop every owned server (SIGTERM, grace, SIGKILL), then exit with
 * 128 + the signal's number; a second signal exits at once. On `unload` (any `Deno.exit`):
 * send SIGTERM to every owned server without waiting. Returns a function that removes the
 * hooks.
 *
 * @example
 * ```ts
 * const sup = new Supervisor({ stateDir: "agents" });
 * const uninstall = installExitHooks(sup);
 * ```
 */
export function installExitHooks(
  sup: Stoppable,
  opts: {
    signals?: Deno.Signal[];
    exit?: (code: number) => void;
    /** Told the exit status at once, so other exit paths can use it while servers stop. */
    onSignal?: (code: number) => void;
  } = {},
): () => void {
  const signals = opts.signals ??
    (Deno.build.os === "windows" ? [] : ["SIGTERM", "SIGHUP"] as Deno.Signal[]);
  const exit = opts.exit ?? ((code: number) => Deno.exit(code));
  let exiting = false;
  const installed = signals.map((signal) => {
    const code = 128 + (SIGNAL_NUMBERS[signal] ?? 0);
    const handler = () => {
      if (exiting) {
        sup.terminateAllNow();
        exit(code);
        return;
      }
      exiting = true;
      opts.onSignal?.(code);
      sup.stopAll().finally(() => exit(code));
    };
    Deno.addSignalListener(signal, handler);
    return { signal, handler };
  });
  const onUnload = () => sup.terminateAllNow();
  globalThis.addEventListener("unload", onUnload);
  return () => {
    for (const { signal, handler } of installed) Deno.removeSignalListener(signal, handler);
    globalThis.removeEventListener("unload", onUnload);
  };
}
