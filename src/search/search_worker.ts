/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The worker a search runs in: it gets one {@linkcode SearchJob}, answers with its result (or
 * the error's name and message), and is then terminated by the caller.
 *
 * @module
 */
import { runSearch, type SearchJob } from "./engine.ts";

self.onmessage = (event: MessageEvent<SearchJob>) => {
  try {
    self.postMessage({ ok: true, result: runSearch(event.data) });
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    self.postMessage({ ok: false, name: e.name, message: e.message });
  }
};
