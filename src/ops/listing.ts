/**
 * Listing a workspace folder, for `/files` and the model's `list_files`: entries sorted by
 * name, hidden ones counted but not listed, links followed only inside the workspace.
 *
 * @module
 */
import type { Agent } from "../agent.ts";
import { accessPath } from "./access.ts";

/** One listed entry: a folder, a file with its size, or a link that leads nowhere usable. */
export interface ListedEntry {
  name: string;
  kind: "folder" | "file" | "broken";
  /** Bytes, for a file. */
  size: number;
  /** The entry is a symlink (to a file or folder inside the workspace). */
  link: boolean;
}

/** A folder's listing. */
export interface Listing {
  /** The folder, relative to the workspace root ("." for the root). */
  path: string;
  entries: ListedEntry[];
  /** Entries whose names start with "." (not listed). */
  hidden: number;
}

/** Lists the folder `path` (permission `read`), through the workspace sandbox. */
export async function listFolder(agent: Agent, path: string): Promise<Listing> {
  const rel = await accessPath(agent, path, "read");
  const all = await agent.workspace.readDir(rel);
  const shown = all.filter((e) => !e.name.startsWith("."));
  const prefix = rel === "." ? "" : `${rel}/`;
  const entries: ListedEntry[] = [];
  for (const e of shown) {
    let info: Deno.FileInfo | undefined;
    try {
      info = await agent.workspace.stat(prefix + e.name);
    } catch {
      info = undefined; // a dangling link, or one that points outside the workspace
    }
    entries.push({
      name: e.name,
      kind: !info ? "broken" : info.isDirectory ? "folder" : "file",
      size: info?.isFile ? info.size : 0,
      link: e.isSymlink,
    });
  }
  return { path: rel, entries, hidden: all.length - shown.length };
}
