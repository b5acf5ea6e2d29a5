#!/usr/bin/env node
// The published bin runs the compiled CLI; in the workspace, run `pnpm effect-x402` (tsx on src).
import "../dist/bin.js"
