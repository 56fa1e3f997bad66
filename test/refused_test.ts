/**
 * Start-up's probes ask a port of this machine before fetching from it: nothing listening is
 * known from a refused connect, without building an HTTP client; anything else is fetched.
 */
import assert from "node:assert/strict";
import { findFreePort } from "../src/runtime/probe.ts";
import { refusedHere } from "../src/util/refused.ts";
import { runHarvey } from "./harvey_child.ts";

Deno.test("a port of this machine where nothing listens is refused; a listening one, other hosts are not", async () => {
  const port = findFreePort();
  assert.equal(await refusedHere(`http://127.0.0.1:${port}`), true);
  assert.equal(await refusedHere(`http://[::1]:${port}/v1`), true);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  try {
    assert.equal(await refusedHere(`http://127.0.0.1:${port}`), false);
  } finally {
    listener.close();
  }
  // Not this machine by its address (a name is resolved by fetch, as before): asked as it is.
  assert.equal(await refusedHere(`http://localhost:${port}`), false);
  assert.equal(await refusedHere("http://203.0.113.9:8080"), false);
  assert.equal(await refusedHere("not a url"), false);
});

Deno.test("nothing at the URL or at Ollama's port: start-up says so as before", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const port = findFreePort();
    const r = await runHarvey(["--llamafile-url", `http://127.0.0.1:${port}`, "-p", "hi"], {
      cwd: dir,
      env: { OLLAMA_HOST: `127.0.0.1:${findFreePort()}` },
    });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`✗ Nothing answers at http://127\\.0\\.0\\.1:${port} \\(--llamafile-url\\)`),
    );
    const ollama = findFreePort();
    const plain = await runHarvey(["-p", "hi"], {
      cwd: dir,
      env: { OLLAMA_HOST: `127.0.0.1:${ollama}` },
    });
    assert.equal(plain.code, 1);
    assert.match(
      plain.stderr,
      new RegExp(`✗ Ollama is not running at http://127\\.0\\.0\\.1:${ollama}\n`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
