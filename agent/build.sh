#!/bin/sh
# Build sspi-agent.exe with mingw-w64: agent/build.sh [OUTPUT] (default: agent/sspi-agent.exe).
# On Windows with MSVC instead: cl /O2 /W3 agent\sspi-agent.c secur32.lib
# Compiler: $SSPI_AGENT_CC, else x86_64-w64-mingw32-gcc
# (apt-get install -y --no-install-recommends gcc-mingw-w64-x86-64).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
output=${1:-$here/sspi-agent.exe}
cc=${SSPI_AGENT_CC:-x86_64-w64-mingw32-gcc}
# -static-libgcc: no mingw runtime DLL beside the .exe, so it runs from any folder.
exec "$cc" -O2 -Wall -Wextra -Wno-unused-parameter -static-libgcc \
    -o "$output" "$here/sspi-agent.c" -lsecur32
