// The declarations in types/ are what `npm run types` makes from the JSDoc in src/: regenerate
// them into a temporary directory and compare, so they never drift from the code.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

import { PACKAGE_DIR } from "./service.mjs";

test("types/ is up to date with src/ (run `npm run types` after changing the JSDoc)", () => {
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const out = mkdtempSync(path.join(tmpdir(), "tokenpulse-types-"));
  try {
    execFileSync(process.execPath, [tsc, "-p", "tsconfig.types.json", "--outDir", out], { cwd: PACKAGE_DIR });
    const committed = path.join(PACKAGE_DIR, "types");
    assert.deepEqual(readdirSync(out).sort(), readdirSync(committed).sort());
    for (const name of readdirSync(out)) {
      assert.equal(readFileSync(path.join(committed, name), "utf8"), readFileSync(path.join(out, name), "utf8"), name);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
