/**
 * Turning what goes wrong between Harvey and a model server into one line for the user.
 *
 * @module
 */
import { HarveyError } from "../errors.ts";

/** True when `err` is an abort (Ctrl-C), not a failure. */
export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted && !(signal.reason instanceof TimeoutError)) return true;
  return err instanceof Error && err.name === "AbortError" && !(err instanceof TimeoutError);
}

/**
 * The server refused a request that does not fit its window (llama-server's 400
 * `exceed_context_size_error`). It carries the server's own numbers, when it gave them.
 */
export class ContextOverflowError extends HarveyError {
  override name = "ContextOverflowError";
  constructor(
    message: string,
    /** The prompt's tokens, as the server counted them. */
    readonly promptTokens?: number,
    /** The window the server really has. */
    readonly window?: number,
  ) {
    super(message);
  }
}

/** The request ran past its configured timeout. */
export class TimeoutError extends HarveyError {
  override name = "TimeoutError";
}

/**
 * Combines the caller's signal with a timeout (0 = none). The timeout aborts with a
 * {@link TimeoutError} so it is told apart from Ctrl-C.
 */
export function withTimeout(
  signal: AbortSignal | undefined,
  timeoutMs: number,
  what: string,
): { signal: AbortSignal | undefined; clear: () => void } {
  if (!timeoutMs) return { signal, clear: () => {} };
  const ctl = new AbortController();
  const timer = setTimeout(
    () =>
      ctl.abort(
        new TimeoutError(
          `${what} did not answer within ${
            timeoutMs / 1000
          }s (raise request_timeout in agents/harvey.yaml)`,
        ),
      ),
    timeoutMs,
  );
  const signals = signal ? [signal, ctl.signal] : [ctl.signal];
  return { signal: AbortSignal.any(signals), clear: () => clearTimeout(timer) };
}

/**
 * Explains a failed request to `what` (e.g. `Ollama at http://localhost:11434`).
 * Connection refused, a dropped stream and a timeout each get their own sentence.
 */
export function explainFetchError(err: unknown, what: string, signal?: AbortSignal): Error {
  if (signal?.reason instanceof TimeoutError) return signal.reason;
  if (err instanceof HarveyError) return err;
  if (isAbort(err, signal)) return err as Error;
  const text = causeChain(err);
  if (/refused|ECONNREFUSED|os error 111|Connection refused/i.test(text)) {
    return new HarveyError(`Cannot reach ${what}: connection refused (is the server running?)`);
  }
  if (/dns|lookup|not known|ENOTFOUND/i.test(text)) {
    return new HarveyError(`Cannot reach ${what}: unknown host`);
  }
  if (/reset|closed|incomplete|unexpected end|body|EOF|socket|connection error/i.test(text)) {
    return new HarveyError(`${what} closed the connection in the middle of the reply`);
  }
  return new HarveyError(`Request to ${what} failed: ${text.split("\n", 1)[0].trim()}`);
}

/**
 * Reads a server's error body (`{"error":{"message"}}`, `{"error":"…"}` or text) into one line;
 * `hint` replaces the usual one for the status.
 */
export async function httpError(res: Response, what: string, hint?: string): Promise<HarveyError> {
  let detail = "";
  try {
    const body = await res.text();
    try {
      const json = JSON.parse(body);
      const e = json?.error;
      detail = typeof e === "string" ? e : e?.message ?? json?.message ?? body;
    } catch {
      detail = body;
    }
  } catch {
    detail = "";
  }
  detail = String(detail).replace(/\s+/g, " ").trim().slice(0, 200);
  const usual = res.status === 503
    ? " (the model is still loading; try again in a moment)"
    : res.status === 401 || res.status === 403
    ? " (check the API key)"
    : res.status === 429
    ? " (rate limited; wait and try again)"
    : "";
  return new HarveyError(
    `${what} answered ${res.status}${detail ? `: ${detail}` : ""}${hint ?? usual}`,
  );
}

function causeChain(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(" ");
}
