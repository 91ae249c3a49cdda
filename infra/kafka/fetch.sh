#!/usr/bin/env bash
# Assemble the Kafka broker classpath (a flat directory of jars) from Maven Central.
# Idempotent: a marker file holds the sha256 of pom.xml, so re-runs are a no-op
# until the pom changes, and a pom change triggers a clean re-fetch.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
LIBS="${AIWATCH_KAFKA_LIBS:-$REPO_ROOT/.aiwatch/kafka/libs}"
POM="$HERE/pom.xml"
MARKER="$LIBS/.fetched"

want="$(sha256sum "$POM" | cut -d' ' -f1)"
up_to_date() { [[ -f "$MARKER" && "$(cat "$MARKER")" == "$want" ]] && compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null; }

if up_to_date; then
  exit 0
fi

# Serialise concurrent fetches (e.g. parallel test runs) on a lock next to the libs dir.
mkdir -p "$(dirname "$LIBS")"
exec 9>"$LIBS.lock"
flock 9
if up_to_date; then  # another process finished the fetch while we waited
  exit 0
fi

# Copy into a temp dir and swap it in, so a failed/interrupted fetch never leaves a
# half-populated classpath, and jars of an old Kafka version never linger next to new ones.
tmp="$(mktemp -d "$LIBS.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetch.sh: downloading Kafka jars into $LIBS ..." >&2
# (sed strips the stray ANSI resets Maven 3.8 prints even in quiet batch mode.)
mvn -B -q -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
echo "$want" >"$tmp/.fetched"
rm -rf "$LIBS"
mv "$tmp" "$LIBS"
trap - EXIT
echo "fetch.sh: $(ls "$LIBS" | wc -l) jars in $LIBS" >&2
