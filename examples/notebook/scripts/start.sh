#!/bin/sh
# Start script: deploy-time secrets arrive as environment variables
# (docker run -e NOTEBOOK_API_TOKEN=...), never from the image.
if [ -z "${NOTEBOOK_API_TOKEN:-}" ]; then
  echo "note: NOTEBOOK_API_TOKEN not set; running without the API" >&2
fi
echo "notebook app from ${APP_HOME:-/opt/app} serving $* in $(pwd)"
