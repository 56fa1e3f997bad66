/**
 * Asking this machine's port before fetching from it: when nothing listens there, a refused
 * connect says so at once (~0.1 ms), where a fetch would first build Deno's HTTP client
 * (~5 ms, once per process) to learn the same. Start-up probes Ollama and the llamafile URL;
 * when neither runs, that is all of their cost.
 *
 * @module
 */

/**
 * True when `url` is on this machine (`127.0.0.1`, `[::1]`) and its port refuses a TCP
 * connection: nothing listens there. False otherwise, and for any other host (ask it).
 *
 * @example
 * ```ts
 * if (await refusedHere("http://127.0.0.1:8080")) throw new Error("not running");
 * ```
 */
export async function refusedHere(url: string): Promise<boolean> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (hostname !== "127.0.0.1" && hostname !== "::1") return false;
  const port = Number(parsed.port) || (parsed.protocol === "https:" ? 443 : 80);
  try {
    (await Deno.connect({ hostname, port })).close();
    return false;
  } catch (err) {
    return err instanceof Deno.errors.ConnectionRefused;
  }
}
