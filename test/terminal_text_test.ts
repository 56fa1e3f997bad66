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
