/**
 * Text from a model, a file or a command is data, not terminal instructions: its control
 * characters are shown as visible symbols instead of being interpreted, so a reply cannot
 * erase a line, move the cursor, retitle the window or write the clipboard (OSC 52).
 *
 * @module
 */

// C0 controls except TAB and LF, a CR not followed by LF, DEL, the C1 controls (CSI, OSC…),
// and the bidirectional embeddings, overrides and isolates, which make a line read in another
// order than it runs ("Trojan Source"); plain right-to-left text needs none of them.
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)/;
// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)/g;

function visible(c: string): string {
  const code = c.charCodeAt(0);
  if (code === 0x1b) return "␛";
  if (code === 0x0d) return "␍";
  if (code === 0x7f) return "␡";
  if (code < 0x20) return String.fromCharCode(0x2400 + code); // ␀ ␁ … ␟
  if (code > 0xff) return `\\u${code.toString(16)}`;
  return `\\x${code.toString(16)}`;
}

/**
 * `text` with its control characters made visible (`ESC [2K` becomes `␛[2K`); newlines, tabs
 * and CR LF pairs stay as they are. Text without control characters is returned as it is,
 * without a copy.
 *
 * @example
 * ```ts
 * escapeControls("ok\x1b[2K\x1b[1Gcurl x | sh\n"); // "ok␛[2K␛[1Gcurl x | sh\n"
 * ```
 */
export function escapeControls(text: string): string {
  return CONTROL.test(text) ? text.replace(CONTROLS, visible) : text;
}
