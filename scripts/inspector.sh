#!/usr/bin/env bash
# Checks the superres MCP server with the official MCP Inspector CLI.
#
#   scripts/inspector.sh                       tools/list
#   scripts/inspector.sh --method resources/list
#   scripts/inspector.sh --method tools/call --tool-name system_info
#   scripts/inspector.sh --method tools/call --tool-name upscale_image --tool-arg input=photo.png
#
# The Inspector is not a dependency (about 160 MB with its web UI); npx fetches it once and caches
# it. Its package asks for Node >= 22.7.5 but the CLI mode works on Node 20. Set MCP_INSPECTOR_BIN
# to an installed mcp-inspector binary to skip npx. Build first (npm run build); the server's
# environment (SUPERRES_HOME, SUPERRES_DEFAULT_MODEL, …) is passed through. Without arguments
# it runs tools/list. `npm test` runs the same check when MCP_INSPECTOR_BIN is set.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/mcp/main.js ] || { echo "dist/mcp/main.js missing: run npm run build first" >&2; exit 1; }
[ $# -gt 0 ] || set -- --method tools/list
if [ -n "${MCP_INSPECTOR_BIN:-}" ]; then
  exec "$MCP_INSPECTOR_BIN" --cli node dist/mcp/main.js "$@"
fi
exec npx -y @modelcontextprotocol/inspector@^0.21 --cli node dist/mcp/main.js "$@"
