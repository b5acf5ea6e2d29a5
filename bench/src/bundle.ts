/**
 * A bench entry as shipped JavaScript: one esbuild bundle (ESM, node20), run with plain `node`, no
 * TypeScript loader in the timed code (see bench/README.md: `tsx` wraps every closure made per call).
 */
import * as esbuild from "esbuild"

export const bundle = async (entry: string, outfile: string): Promise<string> => {
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["esbuild"],
    // CommonJS dependencies (ws, under @effect/platform-node) call `require`.
    banner: {
      js:
        "import { createRequire as __createRequire } from \"node:module\"; const require = __createRequire(import.meta.url);"
    },
    logLevel: "error"
  })
  return outfile
}
