/**
 * Errors meant for the user: one line that says what went wrong and what to do.
 *
 * @module
 */

/** An error whose message is written for the user, shown as it is. */
export class HarveyError extends Error {
  override name = "HarveyError";
}

/** Thrown when a headless script or the command line was used wrongly (exit status 2). */
export class UsageError extends HarveyError {
  override name = "UsageError";
}

/**
 * Turns any thrown value into one line for the user. A refused Deno permission names the
 * permission and the flag that grants it.
 *
 * @example
 * ```ts
 * describeError(new Deno.errors.NotCapable('Requires net access to "example.com:443"'));
 * // 'Permission refused: net access to "example.com:443" (Harvey runs without --allow-net for that host)'
 * ```
 */
export function describeError(err: unknown): string {
  if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
    const m = /Requires (\w+) access to ([^,]+)/.exec(err.message);
    if (m) {
      return `Permission refused: ${m[1]} access to ${m[2]} (run Harvey with --allow-${
        m[1]
      } for it)`;
    }
    return `Permission refused: ${firstLine(err.message)}`;
  }
  if (err instanceof HarveyError) return err.message;
  if (err instanceof Deno.errors.NotFound) {
    // "No such file or directory (os error 2): realpath '/ws/x'" → the path, plainly.
    const path = /: \w+ '([^']+)'$/.exec(firstLine(err.message))?.[1];
    return path ? `No such file or folder: ${path}` : `Not found: ${firstLine(err.message)}`;
  }
  if (err instanceof Error) {
    if (err.name === "AbortError") return "Interrupted";
    return firstLine(err.message) || err.name;
  }
  return String(err);
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0].trim();
}

/**
 * The user cancelled a question (Ctrl-C, Escape, Ctrl-D, or the input ended) and with it the
 * action it guarded. Callers tell it apart from a "no" by its type; it says `Cancelled`.
 */
export class CancelledError extends HarveyError {
  override name = "CancelledError";
  constructor(message = "Cancelled") {
    super(message);
  }
}
