/**
 * Bundles the handler into one ESM file for the Lambda Node.js runtime and prints its size.
 * `pnpm --filter @effect-x402/example-agentcore-lambda bundle`
 */
import * as esbuild from "esbuild"
import * as Path from "node:path"
import * as Url from "node:url"

const here = Path.dirname(Url.fileURLToPath(import.meta.url))

export const bundle = async (outfile = Path.join(here, "bundle", "handler.mjs")) => {
  const result = await esbuild.build({
    entryPoints: [Path.join(here, "src", "handler.ts")],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    minify: true,
    sourcemap: false,
    treeShaking: true,
    metafile: true,
    logLevel: "silent"
  })
  const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0)
  return { outfile, bytes }
}

if (process.argv[1] !== undefined && Path.resolve(process.argv[1]) === Url.fileURLToPath(import.meta.url)) {
  const { bytes, outfile } = await bundle()
  console.log(`${Path.relative(process.cwd(), outfile)}: ${(bytes / 1024).toFixed(1)} KiB`)
}
