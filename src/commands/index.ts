/**
 * The command table: every slash command Harvey has, in the order `/help` lists them, with
 * what `/help` and completion show. Each handler's module is loaded when the command is first
 * used, so start-up pays for none of them.
 *
 * @module
 */
import { lazyImport } from "../util/lazy_import.ts";
import { type CommandEntry, type CommandHandler, CommandRegistry } from "./registry.ts";

/** Loads the handler exported as `name` by the command module `file` (see lazy_import.ts). */
function handler(file: string, name: string): () => Promise<CommandHandler> {
  return async () => {
    const module = await lazyImport<Record<string, CommandHandler>>(new URL(file, import.meta.url));
    const found = module[name];
    if (typeof found?.run !== "function") throw new Error(`${file} exports no handler ${name}`);
    return found;
  };
}

/** Every command: its name, usage and summary, and the module of its handler. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "help",
    aliases: ["?"],
    usage: ["/help [COMMAND]"],
    summary: "List the commands, or show one command's usage",
    load: handler("./core.ts", "helpCommand"),
  },
  {
    name: "status",
    usage: ["/status"],
    summary: "Show the backend, model, history size, workspace and recording state",
    load: handler("./core.ts", "statusCommand"),
  },
  {
    name: "clear",
    usage: ["/clear"],
    summary: "Forget the conversation (the system prompt and pinned context stay)",
    load: handler("./core.ts", "clearCommand"),
  },
  {
    name: "edit",
    usage: ["/edit [TEXT]"],
    summary:
      "Write a prompt in $VISUAL or $EDITOR; it comes back to the prompt (also Ctrl-X Ctrl-E)",
    load: handler("./edit.ts", "editCommand"),
  },
  {
    name: "model",
    usage: ["/model", "/model list", "/model use NAME", "/model NAME"],
    summary: "List the models of every backend, or switch to one",
    load: handler("./model.ts", "modelCommand"),
  },
  {
    name: "ollama",
    usage: ["/ollama start", "/ollama stop", "/ollama status", "/ollama list", "/ollama use MODEL"],
    summary: "Start, stop or inspect Ollama, and use one of its models",
    load: handler("./ollama.ts", "ollamaCommand"),
  },
  {
    name: "llamafile",
    usage: [
      "/llamafile list",
      "/llamafile add [PATH] [NAME]",
      "/llamafile use NAME",
      "/llamafile start [NAME]",
      "/llamafile stop",
      "/llamafile status",
      "/llamafile remove NAME",
      "/llamafile rename OLD NEW",
    ],
    summary: "Register llamafiles, switch among them, start and stop their servers",
    load: handler("./llamafile.ts", "llamafileCommand"),
  },
  {
    name: "llamacpp",
    usage: [
      "/llamacpp list",
      "/llamacpp add [PATH] [NAME]",
      "/llamacpp use NAME",
      "/llamacpp start [NAME]",
      "/llamacpp stop",
      "/llamacpp status",
      "/llamacpp remove NAME",
      "/llamacpp rename OLD NEW",
    ],
    summary: "Register GGUF models served by llama.cpp's llama-server, and switch among them",
    load: handler("./llamacpp.ts", "llamacppCommand"),
  },
  {
    name: "record",
    usage: ["/record start [FILE]", "/record stop", "/record status"],
    summary: "Record the session's turns to a Markdown file",
    load: handler("./record.ts", "recordCommand"),
  },
  {
    name: "session",
    usage: [
      "/session list",
      "/session show [ID]",
      "/session resume [ID]",
      "/session fork [ID]",
      "/session rename [ID] NAME",
      "/session delete ID",
      "/session export FILE.md [ID]",
      "/session replay ID [--model NAME]",
    ],
    summary: "The saved sessions: list, show, resume, fork, rename, delete, export, replay",
    load: handler("./session.ts", "sessionCommand"),
  },
  {
    name: "files",
    usage: ["/files [PATH]"],
    summary: "List a workspace folder (hidden entries are not shown, only counted)",
    load: handler("./files.ts", "filesCommand"),
  },
  {
    name: "read",
    usage: ["/read FILE [FILE…]"],
    summary: "Read workspace files into the conversation as context",
    load: handler("./read.ts", "readCommand"),
  },
  {
    name: "write",
    usage: ["/write PATH"],
    summary: "Write the last reply, or its first code block, to a file (asks before overwriting)",
    load: handler("./write.ts", "writeCommand"),
  },
  {
    name: "apply",
    usage: ["/apply"],
    summary:
      "Write the files of the last reply's path-tagged code blocks (shows diffs, asks first)",
    load: handler("./apply.ts", "applyCommand"),
  },
  {
    name: "unapply",
    usage: ["/unapply"],
    summary:
      "Undo the last /apply or the model's edits of a turn: restore what changed, remove what was created",
    load: handler("./apply.ts", "unapplyCommand"),
  },
  {
    name: "search",
    usage: ["/search PATTERN [PATH]"],
    summary: "Search workspace files for a regular expression and add the matches as context",
    load: handler("./search.ts", "searchCommand"),
  },
  {
    name: "git",
    usage: ["/git SUBCOMMAND [ARGS…]   (status, diff, log, show, blame, grep, ls-files, …)"],
    summary: "Run a read-only git command and add its output to the conversation",
    load: handler("./git.ts", "gitCommand"),
  },
  {
    name: "context",
    usage: [
      "/context add TEXT…",
      "/context show",
      "/context clear",
      "/context load-dir PATH [GLOB]",
    ],
    summary: "Pin text or files that stay in the conversation through /clear and /summarize",
    load: handler("./context.ts", "contextCommand"),
  },
  {
    name: "summarize",
    usage: ["/summarize"],
    summary: "Replace the conversation with a summary written by the model (frees context)",
    load: handler("./summarize.ts", "summarizeCommand"),
  },
  {
    name: "route",
    usage: [
      "/route list",
      "/route add NAME URL|PROVIDER [MODEL] [--key-env VAR] [--provider PROVIDER] [--url URL]",
      "/route remove NAME",
      "/route probe NAME",
      "/route models NAME",
      "/route model NAME MODEL",
      "/route enable NAME",
      "/route disable NAME",
      "@NAME PROMPT   (one turn to that route, with the conversation so far)",
    ],
    summary: "Named remote endpoints and cloud providers, used with @NAME PROMPT",
    load: handler("./route.ts", "routeCommand"),
  },
  {
    name: "pull",
    usage: ["/pull REPO FILE [--revision REV] [--dir DIR] [--sha256 HEX] [--name NAME]"],
    summary: "Download a GGUF or llamafile from Hugging Face (resumable, verified)",
    load: handler("./pull.ts", "pullCommand"),
  },
  {
    name: "tools",
    usage: [
      "/tools [list]",
      "/tools on|off",
      "/tools approve ask|edits|all",
      "/tools mode native|text|off|auto",
    ],
    summary: "List the model's tools and how it gets them; turn them on or off, set what runs",
    load: handler("./tools.ts", "toolsCommand"),
  },
  {
    name: "bench",
    usage: ["/bench [NAME…] [--mode native|text] [--tasks N]", "/bench results"],
    summary: "Measure the local models: speed and tool-call success, for /tools mode auto",
    load: handler("./bench.ts", "benchCommand"),
  },
  {
    name: "run",
    usage: ["/run COMMAND [ARGS…]", "!COMMAND [ARGS…]"],
    summary: "Run a program in the workspace (no shell) and add its output to the conversation",
    load: handler("./run.ts", "runCommandSpec"),
  },
  {
    name: "safemode",
    usage: [
      "/safemode status",
      "/safemode on",
      "/safemode off            (asks first: any command may then run)",
      "/safemode allow CMD…     add program names to the allowlist",
      "/safemode deny CMD…      remove them",
      "/safemode reset          safe mode on, default allowlist",
    ],
    summary: "Show or change safe mode, the allowlist of /run and !",
    load: handler("./safemode.ts", "safemodeCommand"),
  },
  {
    name: "permissions",
    aliases: ["perms"],
    usage: [
      "/permissions list",
      "/permissions set PATH PERMS   PERMS: read,write,exec,delete (comma-separated), all, or none",
      "/permissions reset [PATH]     remove PATH's entry, or every entry (asks first)",
    ],
    summary: "Show or change which paths allow read, write, exec and delete",
    load: handler("./permissions.ts", "permissionsCommand"),
  },
  {
    name: "audit",
    usage: [
      "/audit show [N]   the last N events (default 20)",
      "/audit status",
      "/audit clear      empty the in-memory buffer (agents/audit.jsonl is kept)",
    ],
    summary: "Show the audit log: commands run, permissions refused, settings changed",
    load: handler("./audit.ts", "auditCommand"),
  },
  {
    name: "security",
    usage: ["/security"],
    summary: "Show safe mode, the sandbox, allowed commands, path permissions and the audit log",
    load: handler("./security.ts", "securityCommand"),
  },
  {
    name: "kb",
    usage: [
      "/kb status",
      "/kb project list|add NAME [DESCRIPTION]|use ID|status ID STATUS",
      "/kb observe [note|finding|decision|question|hypothesis] TEXT",
      "/kb concept list|add NAME [DESCRIPTION]|link CONCEPT",
      "/kb search TEXT",
      "/kb inject ID...",
    ],
    summary: "Knowledge base: projects, observations and concepts in agents/knowledge.db",
    load: handler("./kb.ts", "kbCommand"),
  },
  {
    name: "rag",
    usage: [
      "/rag list",
      "/rag new NAME EMBEDDING_MODEL",
      "/rag use NAME",
      "/rag drop NAME",
      "/rag ingest PATH...",
      "/rag query TEXT",
      "/rag on|off",
      "/rag status",
    ],
    summary: "Retrieval-augmented generation: named stores of embedded workspace files",
    load: handler("./rag.ts", "ragCommand"),
  },
  {
    name: "exit",
    aliases: ["quit", "bye"],
    usage: ["/exit"],
    summary: "End the session (servers Harvey started are stopped)",
    load: handler("./core.ts", "exitCommand"),
  },
];

/** A registry with all of Harvey's commands. */
export function createRegistry(): CommandRegistry {
  const registry = new CommandRegistry();
  registry.register(...COMMANDS);
  return registry;
}
