#!/usr/bin/env bash
# Prints the directory of Apache Kafka 4.4.0's protocol schemas that kafkit-codegen reads,
# $KAFKIT_CACHE/kafka-protocol-4.4.0 (KAFKIT_CACHE defaults to ~/.cache/kafkit), building it
# first when it is missing. Nothing of it is committed: it comes from the pinned, sha256-checked
# kafka-clients jar (scripts/kafka.sh libs 4.4.0).
#
#   messages/*.json   every schema of the jar's common/message/, its `//` comments removed
#                     (the source files have them; JSON does not), as plain JSON
#   error_codes.tsv   code, name, retriable, message: the jar's
#                     org.apache.kafka.common.protocol.Errors enum (scripts/kafka/ErrorCodes.java)
#
# The directory is built beside its final place (NAME.part.PID) and renamed into place, so a
# run that stops half way never leaves a directory that looks complete.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KAFKIT_CACHE:-$HOME/.cache/kafkit}
VERSION=4.4.0
out="$CACHE/kafka-protocol-$VERSION"

if [ -f "$out/error_codes.tsv" ] && [ -d "$out/messages" ]; then
  echo "$out"
  exit 0
fi

libs=$("$HERE/kafka.sh" libs "$VERSION")
jar="$libs/kafka-clients-$VERSION.jar"
[ -f "$jar" ] || { echo "protocol-spec.sh: $jar is missing (scripts/kafka.sh libs $VERSION)" >&2; exit 1; }

part="$out.part.$$"
rm -rf "$part"
trap 'rm -rf "$part"' EXIT
mkdir -p "$part/messages"

# Extract and clean the schemas (Python's zipfile: no unzip needed).
python3 - "$jar" "$part/messages" <<'PY'
import json, re, sys, zipfile

jar, dest = sys.argv[1], sys.argv[2]

def strip_comments(text):
    """Drops `//` comments to the end of the line, but not inside JSON strings."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif c == "/" and text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)

with zipfile.ZipFile(jar) as z:
    names = sorted(n for n in z.namelist() if re.fullmatch(r"common/message/[A-Za-z0-9]+\.json", n))
    if not names:
        sys.exit(f"protocol-spec.sh: {jar} carries no common/message/*.json schemas")
    for name in names:
        base = name.rsplit("/", 1)[1]
        text = z.read(name).decode("utf-8")
        try:
            schema = json.loads(strip_comments(text))
        except json.JSONDecodeError as e:
            sys.exit(f"protocol-spec.sh: {name}: not JSON once its comments are removed: {e}")
        with open(f"{dest}/{base}", "w", encoding="utf-8") as f:
            json.dump(schema, f, indent=2, ensure_ascii=False)
            f.write("\n")
print(f"protocol-spec.sh: {len(names)} schemas from {jar}", file=sys.stderr)
PY

# The error codes, from the same jar (Errors logs through slf4j, so its API jar comes along).
slf4j=$(ls "$libs"/slf4j-api-*.jar 2>/dev/null | head -n 1)
java -cp "$jar${slf4j:+:$slf4j}" "$HERE/kafka/ErrorCodes.java" >"$part/error_codes.tsv" 2>"$part/java.log" || {
  cat "$part/java.log" >&2
  echo "protocol-spec.sh: reading the error codes from $jar failed" >&2
  exit 1
}
rm -f "$part/java.log"
[ "$(wc -l <"$part/error_codes.tsv")" -gt 100 ] || { echo "protocol-spec.sh: too few error codes read from $jar" >&2; exit 1; }
echo "Apache Kafka $VERSION protocol schemas and error codes, from $(basename "$jar") (sha256 $(sha256sum "$jar" | cut -d' ' -f1))" >"$part/SOURCE"

if ! mv -T "$part" "$out" 2>/dev/null; then
  # Another run finished first: keep its (identical) directory.
  [ -f "$out/error_codes.tsv" ] || { echo "protocol-spec.sh: could not move $part to $out" >&2; exit 1; }
fi
trap - EXIT
rm -rf "$part"
echo "$out"
