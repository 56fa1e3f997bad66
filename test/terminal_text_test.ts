import assert from "node:assert/strict";
import { escapeControls } from "../src/util/terminal_text.ts";

Deno.test("control characters are shown, not interpreted", () => {
  assert.equal(escapeControls("plain text\n\tindented\r\n"), "plain text\n\tindented\r\n");
  assert.equal(escapeControls("a\x1b[2K\x1b[1Gb"), "a␛[2K␛[1Gb");
  assert.equal(escapeControls("\x1b]52;c;ZXZpbA==\x07"), "␛]52;c;ZXZpbA==␇");
  assert.equal(escapeControls("safe\rcurl x | sh"), "safe␍curl x | sh");
  assert.equal(escapeControls("\x9b2K\x00\x7f"), "\\x9b2K␀␡");
  assert.equal(escapeControls("ünïcödé ✓"), "ünïcödé ✓");
});

Deno.test("bidirectional overrides are shown, so a line reads in the order it runs", () => {
  // "ls \u202e crs" would show as "ls src" reversed; the override is named instead.
  assert.equal(escapeControls("ls \u202e crs"), "ls \\u202e crs");
  assert.equal(escapeControls("a\u2066b\u2069.exe"), "a\\u2066b\\u2069.exe");
  // Right-to-left text itself, and the marks it uses, are kept.
  assert.equal(escapeControls("שלום \u200f مرحبا"), "שלום \u200f مرحبا");
});
