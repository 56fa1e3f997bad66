/**
 * `/permissions`: which paths allow read, write, exec and delete.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { HarveyError } from "../errors.ts";
import {
  normalizeRelPath,
  parsePerms,
  permissionKey,
  READ_ONLY_DEFAULTS,
  SECRET_PATTERNS,
} from "../security/permissions.ts";
import { type CommandHandler, required, subcommand } from "./registry.ts";

const SUBS = ["list", "set", "reset"];

/** The permission lines shared by `/permissions list` and `/security`. */
export function permissionLines(agent: Agent): string[] {
  const entries = Object.entries(agent.config.config.permissions)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const width = Math.max(4, ...entries.map(([k]) => k.length)) + 2;
  const lines = entries.length
    ? entries.map(([k, v]) => `  ${k.padEnd(width)}${v.length ? v.join(",") : "none"}`)
    : ["  (no entries)"];
  return [
    "Permissions (longest matching prefix wins):",
    ...lines,
    "Paths no entry matches: read, write, exec and delete inside the workspace, except",
    `  secrets (${SECRET_PATTERNS.join(", ")}): refused unless an entry names exactly the path`,
    `  ${READ_ONLY_DEFAULTS.join(", ")}: read-only unless an entry names the path (or one inside`,
    "  that .git folder)",
  ];
}

/** `/permissions list|set PATH PERMS|reset [PATH]` */
export const permissionsCommand: CommandHandler = {
  subcommands: SUBS,
  complete: (agent, before) =>
    before[0] === "reset" && before.length === 1
      ? Object.keys(agent.config.config.permissions)
      : before.length === 2 && before[0] === "set"
      ? ["read", "read,write", "all", "none"]
      : before.length
      ? []
      : SUBS,
  async run(agent, args, out) {
    const sub = subcommand("/permissions", args, SUBS, "list");
    const current = agent.config.config.permissions;
    if (sub === "list") {
      for (const line of permissionLines(agent)) out.write(`${line}\n`);
      return;
    }
    if (sub === "set") {
      const usage = "/permissions set PATH PERMS";
      const path = required(args[1], usage);
      const perms = parsePerms(required(args[2], usage));
      if (args.length > 3) throw new HarveyError(`Too many arguments; usage: ${usage}`);
      const key = permissionKey(path, agent.workspace.root);
      const previous = existingKey(current, key);
      const changes: [string[], unknown][] = [];
      if (previous !== undefined && previous !== key) {
        changes.push([["permissions", previous], undefined]);
      }
      changes.push([["permissions", key], perms]);
      await agent.config.update(changes);
      const shown = perms.length ? perms.join(",") : "none";
      agent.audit?.record("permissions", `set ${key} ${shown}`, "success");
      out.write(`${key}: ${shown} (saved to agents/harvey.yaml)\n`);
      return;
    }
    if (args[1] !== undefined) {
      const key = existingKey(current, permissionKey(args[1], agent.workspace.root));
      if (key === undefined) {
        throw new HarveyError(
          `No permissions entry for "${args[1]}" (entries: ${
            Object.keys(current).join(", ") || "none"
          })`,
        );
      }
      await agent.config.update([[["permissions", key], undefined]]);
      agent.audit?.record("permissions", `reset ${key}`, "success");
      out.write(`Removed the entry for ${key} (saved to agents/harvey.yaml)\n`);
      return;
    }
    const n = Object.keys(current).length;
    if (n === 0) {
      out.write("There are no permissions entries; the defaults apply.\n");
      return;
    }
    const yes = await agent.asker.confirm(`Remove all ${n} permissions entries?`, false);
    if (!yes) {
      out.write("Permissions unchanged.\n");
      return;
    }
    await agent.config.update([[["permissions"], undefined]]);
    agent.audit?.record("permissions", `reset all (${n} entries removed)`, "success");
    out.write(
      `Removed ${n} permissions entries (saved to agents/harvey.yaml); the defaults apply.\n`,
    );
  },
};

/** The key of `permissions` that normalizes to `key`, as written in the file. */
function existingKey(
  permissions: Record<string, string[]>,
  key: string,
): string | undefined {
  return Object.keys(permissions).find((k) => normalizeRelPath(k) === key);
}
