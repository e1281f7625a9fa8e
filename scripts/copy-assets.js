#!/usr/bin/env node
// Copies what tsc does not emit next to the compiled nodes: editor HTML and icons.
const fs = require('node:fs');
const path = require('node:path');
const root = path.join(__dirname, '..');
const src = path.join(root, 'nodes');
const dest = path.join(root, 'dist', 'nodes');
if (fs.existsSync(src)) {
  fs.mkdirSync(dest, { recursive: true });
  for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
    if (entry.isFile() && entry.name.endsWith('.html')) fs.copyFileSync(path.join(src, entry.name), path.join(dest, entry.name));
    if (entry.isDirectory() && (entry.name === 'icons' || entry.name === 'locales')) fs.cpSync(path.join(src, entry.name), path.join(dest, entry.name), { recursive: true });
  }
}
