// Start the real tokenpulse service for the tests: `python -m tokenpulse serve` on the bundled
// replay data (no network), on a free port of 127.0.0.1.
//
// The interpreter is $TOKENPULSE_PYTHON, default ../../.venv/bin/python from clients/js.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PYTHON = path.resolve(PACKAGE_DIR, process.env.TOKENPULSE_PYTHON ?? "../../.venv/bin/python");
const START_DEADLINE_MS = 30_000;
export const DEADLINE_MS = 10_000;

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Poll `check` (sync or async) until it returns a truthy value, or fail at the deadline. */
export async function waitFor(check, what, deadlineMs = DEADLINE_MS) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Start `tokenpulse serve` with the replay source (and `extraEnv`); resolves once /health
 * answers. `port` reuses a port (a restart); `cwd` a working directory (its data/ survives).
 */
export async function startService(extraEnv = {}, { port, cwd } = {}) {
  port ??= await freePort();
  const ownDir = cwd === undefined;
  cwd ??= mkdtempSync(path.join(tmpdir(), "tokenpulse-js-"));
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? cwd,
    ...(process.env.PYTHONPATH ? { PYTHONPATH: process.env.PYTHONPATH } : {}),
    SOURCES: "replay",
    REPLAY_SPEED: "36000", // hourly recorded frames: each pair updates about 10 times a second
    HOST: "127.0.0.1",
    PORT: String(port),
    LOG_LEVEL: "warning",
    SHUTDOWN_TIMEOUT: "5s",
    ...extraEnv,
  };
  const child = spawn(PYTHON, ["-m", "tokenpulse", "serve"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`service exited (${child.exitCode}):\n${output}`);
        try {
          return (await fetch(`${url}/health`)).ok;
        } catch {
          return false;
        }
      },
      "the service to answer /health",
      START_DEADLINE_MS,
    );
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    url,
    port,
    cwd,
    /** Stop it (SIGTERM, SIGKILL after 10 s); `keep` leaves its working directory. */
    async stop({ keep = false } = {}) {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (ownDir && !keep) rmSync(cwd, { recursive: true, force: true });
    },
  };
}
