#!/usr/bin/env node
// The `switchboard` command: runs the compiled CLI (npm install builds it).
import '../dist/src/cli/main.js';
