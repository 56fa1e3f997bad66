/**
 * Every npm package Harvey uses, pinned to an exact version. The rest of the code imports
 * from here so that a run straight from a URL (which ignores `deno.json`) resolves the
 * same versions.
 *
 * Heavy packages (`yaml`, `openai`, `commander`) are loaded lazily through the functions below so that
 * start-up does not pay for them: export only their types from this module, never a value.
 *
 * @module
 */

// Types only: a value exported from here would load the package with this module.
export type { Document, Node as YamlNode, Pair as YamlPair } from "npm:yaml@2.9.1";
export type { CommanderError } from "npm:@commander-js/extra-typings@15.1.0";
export type { ChatCompletionChunk } from "npm:openai@7.55.0/resources/chat/completions";

/** The `yaml` module, loaded when there is a `harvey.yaml` to read or write. */
export function loadYaml(): Promise<typeof import("npm:yaml@2.9.1")> {
  return import("npm:yaml@2.9.1");
}

/** The `openai` module, loaded on first use. */
export function loadOpenAI(): Promise<typeof import("npm:openai@7.55.0")> {
  return import("npm:openai@7.55.0");
}

/** `commander`, loaded for a command line that is more than plain global flags. */
export function loadCommander(): Promise<typeof import("npm:@commander-js/extra-typings@15.1.0")> {
  return import("npm:@commander-js/extra-typings@15.1.0");
}
