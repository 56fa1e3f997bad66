/**
 * The built-in tool tasks of `/bench`: ten small jobs a coding agent does every day — read a
 * file and answer from it, find a function, count a folder, fix a line with `edit_file`,
 * create a file — each with the files of the scratch workspace it runs in and a check of the
 * answer and of the files afterwards. The words to find are drawn at random for every run, so
 * only a model that really called the tool can answer.
 *
 * @module
 */

/** What a check can see once a task's turn is over. */
export interface TaskOutcome {
  /** The model's last answer (its final assistant message). */
  answer: string;
  /** A file of the scratch workspace as it is now, undefined when it does not exist. */
  read(path: string): Promise<string | undefined>;
}

/** One task. */
export interface BenchTask {
  id: string;
  /** The prompt the model gets. */
  prompt: string;
  /** The scratch workspace's files for this task (path → content). */
  files: Record<string, string>;
  /** Whether the model did it. */
  check(outcome: TaskOutcome): Promise<boolean>;
}

const WORDS = [
  "HERON",
  "MAPLE",
  "COBALT",
  "QUARTZ",
  "LANTERN",
  "FALCON",
  "CEDAR",
  "ORBIT",
  "PEBBLE",
  "TUNDRA",
  "VIOLET",
  "WALRUS",
];

/** A source of random numbers below `n` (crypto by default; a test may fix it). */
export type Draw = (n: number) => number;

const cryptoDraw: Draw = (n) => crypto.getRandomValues(new Uint32Array(1))[0] % n;

/** `HERON-4821`: a word and four digits, which no model guesses. */
function codeWord(draw: Draw): string {
  return `${WORDS[draw(WORDS.length)]}-${1000 + draw(9000)}`;
}

const has = (text: string, word: string) => text.toUpperCase().includes(word.toUpperCase());

/** The ten tasks, with fresh random words. */
export function benchTasks(draw: Draw = cryptoDraw): BenchTask[] {
  const [w1, w2, w3, w4] = [codeWord(draw), codeWord(draw), codeWord(draw), codeWord(draw)];
  const port = 20000 + draw(40000);
  const widget = `src/widgets_${100 + draw(900)}.ts`;
  const docs = 3 + draw(5);
  const line = 12 + draw(15);
  const listing = Array.from(
    { length: 30 },
    (_, i) => `item ${i + 1}: ${i + 1 === line ? w2 : WORDS[i % WORDS.length].toLowerCase()}`,
  ).join("\n") + "\n";
  return [
    {
      id: "read-word",
      prompt: "Read notes/alpha.txt and reply with the code word it contains, nothing else.",
      files: { "notes/alpha.txt": `Meeting notes.\nThe code word is ${w1}.\nThat is all.\n` },
      check: ({ answer }) => Promise.resolve(has(answer, w1)),
    },
    {
      id: "read-line",
      prompt:
        `Read line ${line} of data/list.txt and reply with the word after the colon on that ` +
        "line, nothing else.",
      files: { "data/list.txt": listing },
      check: ({ answer }) => Promise.resolve(has(answer, w2)),
    },
    {
      id: "read-json",
      prompt: "Read config/app.json and reply with the value of its port field, nothing else.",
      files: {
        "config/app.json": `${
          JSON.stringify({ name: "demo", port, debug: false, hosts: ["a", "b"] }, null, 2)
        }\n`,
      },
      check: ({ answer }) => Promise.resolve(answer.includes(String(port))),
    },
    {
      id: "follow-note",
      prompt: "Read todo.txt, follow what it says, and reply with the code word, nothing else.",
      files: {
        "todo.txt": "The answer is in docs/deep/secret.txt.\n",
        "docs/deep/secret.txt": `The code word is ${w3}.\n`,
      },
      check: ({ answer }) => Promise.resolve(has(answer, w3)),
    },
    {
      id: "search-function",
      prompt:
        "Search the workspace for the function parseWidget and reply with the path of the file " +
        "that defines it, nothing else.",
      files: {
        "src/main.ts": 'import { parseWidget } from "./lib.ts";\nparseWidget("x");\n',
        "src/util.ts": "export const id = (x: string) => x;\n",
        [widget]: "export function parseWidget(text: string) {\n  return text.trim();\n}\n",
        "README.md": "# Widgets\n",
      },
      check: ({ answer }) => Promise.resolve(answer.includes(widget.slice("src/".length))),
    },
    {
      id: "count-files",
      prompt: "List the folder docs and reply with how many files it holds, as a number only.",
      files: Object.fromEntries(
        Array.from({ length: docs }, (_, i) => [`docs/page${i + 1}.md`, `# Page ${i + 1}\n`]),
      ),
      check: ({ answer }) => Promise.resolve(new RegExp(`(^|\\D)${docs}(\\D|$)`).test(answer)),
    },
    {
      id: "edit-line",
      prompt: 'In src/greet.ts, use edit_file to replace `const name = "wrld";` with ' +
        '`const name = "world";`.',
      files: { "src/greet.ts": 'const name = "wrld";\nconsole.log(`hello ${name}`);\n' },
      check: async ({ read }) => {
        const text = await read("src/greet.ts") ?? "";
        return text.includes('const name = "world";') && text.includes("console.log");
      },
    },
    {
      id: "fix-bug",
      prompt:
        "src/math.ts has a bug: add returns a - b. Fix it with edit_file so it returns a + b.",
      files: {
        "src/math.ts":
          "export function add(a: number, b: number): number {\n  return a - b;\n}\n\n" +
          "export function sub(a: number, b: number): number {\n  return a - b;\n}\n",
      },
      check: async ({ read }) => {
        const text = (await read("src/math.ts") ?? "").replace(/\s+/g, " ");
        return /add\(a: number, b: number\): number \{ return a \+ b;? \}/.test(text) &&
          /sub\(a: number, b: number\): number \{ return a - b;? \}/.test(text);
      },
    },
    {
      id: "fix-typo",
      prompt: "Fix the spelling of the word Instalation in README.md with edit_file.",
      files: { "README.md": "# Demo\n\nInstalation: run make, then make install.\n" },
      check: async ({ read }) => {
        const text = await read("README.md") ?? "";
        return text.includes("Installation: run make, then make install.") &&
          !text.includes("Instalation");
      },
    },
    {
      id: "write-file",
      prompt:
        `Create the file out/answer.txt whose whole content is the text ${w4} (use write_file).`,
      files: {},
      check: async ({ read }) => (await read("out/answer.txt"))?.trim() === w4,
    },
  ];
}
