/**
 * Every task of deno.json turns Deno's update check off: offline, that check is the only
 * connection a session makes beyond loopback (one DNS lookup at each `deno run` on a
 * terminal), and a task that lost the variable would bring it back.
 */
import assert from "node:assert/strict";

const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));

Deno.test("every deno.json task sets DENO_NO_UPDATE_CHECK=1 for the deno it runs", () => {
  const tasks = Object.entries(config.tasks as Record<string, string>);
  assert.ok(tasks.length >= 6, "the tasks are there");
  for (const [name, command] of tasks) {
    const words = command.trim().split(/\s+/);
    const env = words.slice(0, words.findIndex((w) => !/^[A-Z_][A-Z0-9_]*=/.test(w)));
    assert.ok(env.includes("DENO_NO_UPDATE_CHECK=1"), `task ${name}: ${command}`);
    // One deno per task: a second one (after && or ;) would not get the variable.
    assert.equal(command.split(/\bdeno\b/).length - 1, 1, `task ${name} runs deno once`);
  }
});

Deno.test("the README's commands go through the tasks", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const commands = [...readme.matchAll(/^(?:npx -y deno@[\d.]+|deno) (\S+)/gm)].map((m) => m[1]);
  assert.ok(commands.length > 0);
  for (const sub of commands) assert.equal(sub, "task", `README runs "deno ${sub}" directly`);
});
