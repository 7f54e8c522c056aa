#!/usr/bin/env bash
# Fetch the Delta jars and their runtime dependencies with Maven into OUT, minus every artifact
# pyspark already ships (any version: Spark's own copy wins on the classpath anyway).
# Usage: jars/fetch.sh OUT PYTHON
set -euo pipefail
out=$1; python=$2
here=$(cd "$(dirname "$0")" && pwd)
spark_jars=$("$python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp"
rm -rf "$out"; mkdir -p "$out"
artifact() { basename "$1" | sed -E 's/-[0-9][^-]*(-[0-9]+)?\.jar$//'; }
declare -A shipped=()
for j in "$spark_jars"/*.jar; do shipped[$(artifact "$j")]=1; done
for j in "$tmp"/*.jar; do
  [ -n "${shipped[$(artifact "$j")]:-}" ] || cp "$j" "$out/"
done
ls "$out"/*.jar | grep -q delta-spark || { echo "jars/fetch.sh: delta-spark jar missing in $out" >&2; exit 1; }
echo "jars/fetch.sh: $(ls "$out"/*.jar | wc -l) jars in $out"
