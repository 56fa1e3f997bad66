/**
 * Importing a module of Harvey's the first time it is needed, by a URL Deno does not read
 * ahead.
 *
 * Before a program's first line runs, Deno reads every module it can see imported — the
 * dynamic `import("./x.ts")` ones too, and everything they import — to check its caches, one
 * after another (about 0.1 ms a module on a warm cache). Start-up needs 66 of Harvey's
 * modules; the ~80 that only a command, a prompt or the REPL need cost every start ~6 ms more
 * when written as `import("./x.ts")`. Named through {@linkcode lazyImport}, they are read when
 * they are first imported. Their types still come from `typeof import("./x.ts")`, which
 * `deno run` does not load; `deno task check` checks them all, and `deno compile` is told to
 * include them (`scripts/compile.ts`).
 *
 * @module
 */

/**
 * The module at `url`, imported now (once: later imports get the same module).
 *
 * @example
 * ```ts
 * const turn = await lazyImport<typeof import("./turn.ts")>(new URL("./turn.ts", import.meta.url));
 * ```
 */
export function lazyImport<T>(url: URL): Promise<T> {
  return import(url.href);
}
