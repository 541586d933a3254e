#!/bin/sh
# The image's entrypoint: `stopline-entrypoint MODULE [ARGS]` runs `python -m MODULE [ARGS]`.
# A setting given as NAME_FILE=/path (a secret mounted as a file, as docker compose does) is read into
# NAME first, so no secret needs to be written into an environment file.
set -eu
for name in $(env | sed -n 's/^\([A-Z][A-Z0-9_]*\)_FILE=.*/\1/p'); do
  eval "path=\${${name}_FILE}"
  if [ ! -r "$path" ]; then
    echo "stopline-entrypoint: ${name}_FILE=$path is not a readable file" >&2
    exit 64
  fi
  value="$(cat "$path")"
  export "$name=$value"
  unset "${name}_FILE"
done
if [ "$#" -eq 0 ]; then
  echo "usage: stopline-entrypoint MODULE [ARGS] (e.g. services.ingest.app)" >&2
  exit 64
fi
exec python -m "$@"
