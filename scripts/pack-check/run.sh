#!/usr/bin/env bash
# Builds and packs the three packages, installs the tarballs into a fresh npm project outside the
# workspace, type-checks a TypeScript file importing all three, and runs it.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d /tmp/effect-x402-pack.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cd "$root"
pnpm build >/dev/null
for pkg in core lambda testing; do
  (cd "packages/$pkg" && pnpm pack --pack-destination "$work" >/dev/null)
done
ls "$work"/*.tgz
version() { node -p "require('$root/node_modules/$1/package.json').version"; }
cd "$work"
cat > package.json <<JSON
{ "name": "pack-check-consumer", "private": true, "type": "module" }
JSON
npm install --no-audit --no-fund --loglevel=error \
  ./effect-x402-core-*.tgz ./effect-x402-lambda-*.tgz ./effect-x402-testing-*.tgz \
  "effect@$(version effect)" "@effect/platform@$(version @effect/platform)" \
  "@effect/platform-node@$(version @effect/platform-node)" \
  "typescript@$(version typescript)" "@types/node@$(version @types/node)" >/dev/null
cp "$root/scripts/pack-check/consumer.ts" .
cat > tsconfig.json <<JSON
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "skipLibCheck": false, "outDir": "out", "types": ["node"]
  },
  "files": ["consumer.ts"]
}
JSON
npx tsc -p tsconfig.json
node out/consumer.js
