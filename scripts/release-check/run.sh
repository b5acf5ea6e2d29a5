#!/usr/bin/env bash
# The release check (`pnpm release:check`): publishes the three packages to a local registry
# (verdaccio 6.8 on 127.0.0.1, proxying everything else to the npm registry this machine uses),
# installs them from it with pnpm and with npm into two fresh projects outside the workspace, and
# there type-checks the README's quick start and testing snippets, runs the quick start against
# FakeNevermined and runs the testing snippet with vitest. What a user does after a release.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d /tmp/effect-x402-release.XXXXXX)"
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# verdaccio 6.10 wants Node 22; 6.8 runs on Node 20. Installed once per machine, outside the repo.
VERDACCIO_VERSION=6.8.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/effect-x402/verdaccio-$VERDACCIO_VERSION"
if [ ! -x "$cache/node_modules/.bin/verdaccio" ]; then
  echo "release-check: installing verdaccio $VERDACCIO_VERSION into $cache"
  mkdir -p "$cache"
  NPM_CONFIG_LOGLEVEL=error npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "verdaccio@$VERDACCIO_VERSION" >/dev/null
fi

upstream="$(npm config get registry)"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
registry="http://127.0.0.1:$port/"
cat > "$work/verdaccio.yaml" <<YAML
storage: $work/storage
auth:
  htpasswd:
    file: $work/htpasswd
    max_users: 1
uplinks:
  upstream:
    url: $upstream
    timeout: 60s
packages:
  "@effect-x402/*":
    access: \$all
    publish: \$authenticated
  "**":
    access: \$all
    proxy: upstream
listen: 127.0.0.1:$port
log: { type: stdout, format: pretty, level: warn }
YAML
"$cache/node_modules/.bin/verdaccio" --config "$work/verdaccio.yaml" > "$work/verdaccio.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do
  curl -sf "${registry}-/ping" >/dev/null && break
  sleep 0.2
done
curl -sf "${registry}-/ping" >/dev/null || { echo "release-check: the registry did not start"; cat "$work/verdaccio.log"; exit 1; }

# A publisher account on the throwaway registry (its password dies with $work).
token="$(curl -sf -X PUT -H 'content-type: application/json' \
  -d '{"name":"release","password":"release-check-only"}' \
  "${registry}-/user/org.couchdb.user:release" | node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).token')"
printf '//127.0.0.1:%s/:_authToken=%s\n' "$port" "$token" > "$work/publish.npmrc"

# pnpm pack turns workspace:^ into versions and applies publishConfig, as pnpm publish does.
cd "$root"
pnpm build >/dev/null
mkdir -p "$work/tarballs"
for pkg in core lambda testing cli; do
  (cd "packages/$pkg" && pnpm pack --pack-destination "$work/tarballs" >/dev/null)
done
for tarball in "$work"/tarballs/*.tgz; do
  listing="$(tar -tzf "$tarball")"
  for file in package/README.md package/LICENSE; do
    grep -qx "$file" <<<"$listing" || { echo "release-check: $(basename "$tarball") lacks $file"; exit 1; }
  done
  npm publish "$tarball" --registry "$registry" --userconfig "$work/publish.npmrc" --loglevel=error >/dev/null
done
echo "release-check: published $(ls "$work"/tarballs | tr '\n' ' ')to $registry"

version() { node -p "require('$root/node_modules/$1/package.json').version"; }
deps=(
  @effect-x402/core @effect-x402/lambda @effect-x402/testing @effect-x402/cli
  "effect@$(version effect)" "@effect/platform@$(version @effect/platform)"
  "@effect/platform-node@$(version @effect/platform-node)"
)
devs=(
  "typescript@$(version typescript)" "@types/node@$(version @types/node)"
  "vitest@$(version vitest)" "@effect/vitest@$(version @effect/vitest)"
)

consumer() {
  local dir=$1
  mkdir -p "$dir"
  cat > "$dir/package.json" <<JSON
{ "name": "release-check-consumer", "private": true, "type": "module" }
JSON
  printf 'registry=%s\n' "$registry" > "$dir/.npmrc"
  cp "$root/examples/readme/snippets/quick-start.ts" "$root/examples/readme/snippets/agent.test.ts" "$dir/"
  cp "$root/scripts/release-check/quick-start.run.ts" "$dir/"
  cat > "$dir/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "skipLibCheck": true, "outDir": "out", "types": ["node"]
  },
  "files": ["quick-start.ts", "quick-start.run.ts", "agent.test.ts"]
}
JSON
}

check() {
  local dir=$1 manager=$2
  (
    cd "$dir"
    npx tsc -p tsconfig.json
    node out/quick-start.run.js
    npx vitest run agent.test.ts --reporter=dot >/dev/null
    npx effect-x402 --help | grep -q "decode" || { echo "release-check: effect-x402 --help does not list decode"; exit 1; }
  )
  echo "release-check: installed with $manager, the README's quick start and testing snippets type-check and run; the effect-x402 bin answers --help"
}

consumer "$work/with-pnpm"
(cd "$work/with-pnpm" && pnpm add --registry "$registry" "${deps[@]}" >"$work/pnpm.log" 2>&1 &&
  pnpm add -D --registry "$registry" "${devs[@]}" >>"$work/pnpm.log" 2>&1) || { cat "$work/pnpm.log"; exit 1; }
check "$work/with-pnpm" pnpm

consumer "$work/with-npm"
(cd "$work/with-npm" && npm install --registry "$registry" --no-audit --no-fund --loglevel=error "${deps[@]}" >/dev/null &&
  npm install -D --registry "$registry" --no-audit --no-fund --loglevel=error "${devs[@]}" >/dev/null)
check "$work/with-npm" npm
