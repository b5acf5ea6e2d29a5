// Rewrites every `<!-- file: path -->` + ```ts block of README.md and docs/*.md with the current
// content of that file, so the quoted snippets never drift (the readme/snippets tests check it).
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const root = join(import.meta.dirname, "..")
const docs = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)]
for (const doc of docs) {
  const path = join(root, doc)
  const text = readFileSync(path, "utf8")
  const synced = text.replace(
    /<!-- file: (\S+) -->\n```ts\n[\s\S]*?```\n/g,
    (_, file) => `<!-- file: ${file} -->\n\`\`\`ts\n${readFileSync(join(root, file), "utf8")}\`\`\`\n`
  )
  if (synced !== text) {
    writeFileSync(path, synced)
    console.log(`synced ${doc}`)
  }
}
