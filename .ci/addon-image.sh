#!/usr/bin/env bash
# The app (add-on) images, built from addon/Dockerfile with buildah and no pulled base, and the
# amd64 one started as the Supervisor starts it (tests/it/addon_image.rs). Run after
# .ci/static-builds.sh, which puts the static binaries into addon/.
#
#   bash .ci/addon-image.sh            build both images, check them, run the start-up tests
#
# Checks: versions agree (Cargo.toml, addon/config.yaml, addon/CHANGELOG.md, labels, tag, the
# binary's --version); each image holds exactly the binary and the CA bundle, for its
# architecture, within 6 MB compressed, granted by addon/apparmor.txt; the aarch64 binary taken
# out of its image runs under qemu; inside the amd64 image TLS verifies against the image's CA
# bundle (an unknown CA is refused; a CA added to the bundle or named by SSL_CERT_FILE is
# trusted); the amd64 image publishes both providers, keeps /data private, stops on SIGTERM with
# `offline` and exit 0, and refuses bad options with the message `run --addon` gives outside.
# The images are named as addon/config.yaml's `image:` with the version as tag, so the release
# workflow pushes exactly what was tested here.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

passed=0
failed=0
# check DESCRIPTION COMMAND...: one counted check.
check() {
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $what"
  else
    failed=$((failed + 1))
    echo "FAILED: $what" >&2
  fi
}
same() { [ "$1" = "$2" ] || { echo "  expected '$2', got '$1'" >&2; return 1; }; }

install_debs() {
  local missing=()
  command -v buildah >/dev/null 2>&1 || missing+=(buildah)
  command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  [ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
  if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
install_debs

# vfs works without overlay support or fuse, as inside CI's own containers.
BUILDAH=(buildah --storage-driver vfs)
work=$(mktemp -d)
# The HTTPS stand-in of the TLS checks (below) is stopped with the script.
SUPERVISOR_PID=
trap '[ -z "$SUPERVISOR_PID" ] || kill "$SUPERVISOR_PID" 2>/dev/null; rm -rf "$work"' EXIT

step "versions"
cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
addon_version=$(sed -n 's/^version: "\(.*\)"$/\1/p' addon/config.yaml)
version=$addon_version
echo "Cargo.toml $cargo_version, addon/config.yaml $addon_version"
check "addon/config.yaml version = Cargo.toml version" same "$addon_version" "$cargo_version"
check "addon/CHANGELOG.md has an entry for $version" grep -q "^## $version\$" addon/CHANGELOG.md
image_pattern=$(sed -n 's/^image: *//p' addon/config.yaml)
check "addon/config.yaml names one image per architecture" grep -q '{arch}' <<<"$image_pattern"

for arch in amd64 aarch64; do
  if [ ! -f "addon/meter2mqtt-$arch" ]; then
    echo "ERROR: addon/meter2mqtt-$arch is missing; run .ci/static-builds.sh first" >&2
    exit 1
  fi
done

# The Mozilla CA bundle as Debian ships it: the trust roots for rustls' platform verifier.
cp /etc/ssl/certs/ca-certificates.crt addon/ca-certificates.crt

# Reproducible layers: file times and the creation date are the last commit's.
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)

declare -A PLATFORM=([amd64]=amd64 [aarch64]=arm64)
declare -A SIZES
for arch in amd64 aarch64; do
  image="${image_pattern//\{arch\}/$arch}:$version"
  step "build $image"
  start=$(date +%s)
  "${BUILDAH[@]}" bud --quiet --pull=never --timestamp "$epoch" \
    --platform "linux/${PLATFORM[$arch]}" \
    --build-arg BUILD_ARCH="$arch" --build-arg BUILD_VERSION="$version" \
    --tag "$image" --file addon/Dockerfile addon >/dev/null
  echo "built in $(($(date +%s) - start)) s"

  label() { "${BUILDAH[@]}" inspect --type image --format "{{index .OCIv1.Config.Labels \"$1\"}}" "$image"; }
  check "$arch: label io.hass.arch" same "$(label io.hass.arch)" "$arch"
  check "$arch: label io.hass.version" same "$(label io.hass.version)" "$version"
  check "$arch: label io.hass.type" same "$(label io.hass.type)" "addon"
  check "$arch: image architecture" same \
    "$("${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Architecture}}' "$image")" "${PLATFORM[$arch]}"
  check "$arch: entrypoint and command" same \
    "$("${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}' "$image")" \
    "[/usr/bin/meter2mqtt] [run --addon]"

  # The layers as a registry serves them (gzip), from an OCI layout written by `buildah push`.
  layout="$work/oci-$arch"
  "${BUILDAH[@]}" push --quiet "$image" "oci:$layout" >/dev/null
  compressed=$(find "$layout/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  listing="$work/files-$arch"
  : >"$listing"
  for blob in "$layout"/blobs/sha256/*; do
    if gzip -t "$blob" 2>/dev/null; then
      tar -tvzf "$blob" >>"$listing"
      if tar -tzf "$blob" | grep -qx 'usr/bin/meter2mqtt'; then
        tar -xzf "$blob" -O usr/bin/meter2mqtt >"$work/meter2mqtt-$arch"
      fi
    fi
  done
  unpacked=$(awk '{s += $3} END {print s + 0}' "$listing")
  SIZES[$arch]="$compressed $unpacked"
  echo "files of $image:"
  sed 's/^/  /' "$listing"
  files=$(awk '{print $NF}' "$listing" | sed 's#^\./##; s#/$##' | sort -u | tr '\n' ' ')
  check "$arch: the image holds exactly the binary and the CA bundle" same "$files" \
    "etc etc/ssl etc/ssl/certs etc/ssl/certs/ca-certificates.crt usr usr/bin usr/bin/meter2mqtt "
  while read -r file; do
    check "$arch: addon/apparmor.txt lets the app read /$file" grep -Eq "^ */$file r" addon/apparmor.txt
  done < <(awk '$1 !~ /^d/ {print $NF}' "$listing")
  check "$arch: the image's binary is the one .ci/static-builds.sh checked" \
    cmp -s "$work/meter2mqtt-$arch" "addon/meter2mqtt-$arch"
  check "$arch: compressed image $compressed bytes <= 6 MB" test "$compressed" -le 6000000
done

step "the aarch64 image's binary under qemu"
chmod +x "$work/meter2mqtt-aarch64"
check "aarch64: --version under qemu" same "$(qemu-aarch64 "$work/meter2mqtt-aarch64" --version)" "meter2mqtt $version"
printf '{"eloverblik": [{"refresh_token": ""}]}' >"$work/bad-options.json"
set +e
refusal=$(SUPERVISOR_TOKEN=unused qemu-aarch64 "$work/meter2mqtt-aarch64" run --addon --options "$work/bad-options.json" 2>&1)
code=$?
set -e
echo "$refusal"
check "aarch64: bad options exit 2 under qemu" same "$code" 2
check "aarch64: bad options name the option" grep -q 'eloverblik\[0\].refresh_token' <<<"$refusal"

amd64_image="${image_pattern//\{arch\}/amd64}:$version"
step "the amd64 image inside: --version"
probe=$("${BUILDAH[@]}" from --quiet --pull=never "$amd64_image")
check "amd64: --version inside the image" same \
  "$("${BUILDAH[@]}" run --isolation chroot --network host "$probe" -- /usr/bin/meter2mqtt --version)" "meter2mqtt $version"
"${BUILDAH[@]}" rm "$probe" >/dev/null

# TLS inside the image: rustls' platform verifier must find the image's trust roots and verify
# with them. Nothing outside is reachable here, so a throwaway CA signs a certificate for
# 127.0.0.1 and a Supervisor stand-in answers over HTTPS with a recognisable refusal; the app
# prints it only if the handshake and the verification succeeded.
step "TLS inside the amd64 image"
tls="$work/tls"
mkdir -p "$tls/data"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=meter2mqtt test CA" \
  -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$tls/san.ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 1 \
  -extfile "$tls/san.ext" -out "$tls/server.pem" 2>/dev/null
cat > "$tls/serve.py" <<'PY'
import http.server, json, ssl, sys
class Supervisor(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"result": "error", "message": "reached over verified TLS"}).encode()
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the refused handshakes of the first check
server = Server(("127.0.0.1", 0), Supervisor)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
# The handshake happens in the connection's thread: a client that gives up cannot block the next.
server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
coproc SUPERVISOR { exec python3 "$tls/serve.py" "$tls/server.pem" "$tls/server.key"; }
read -r tls_port <&"${SUPERVISOR[0]}"
printf '{"eloverblik": [{"refresh_token": "unused"}]}' >"$tls/data/options.json"
cp "$tls/ca.pem" "$tls/data/test-ca.pem"
# run_tls CONTAINER [ENV=VALUE]: what the app says about the HTTPS Supervisor stand-in.
run_tls() {
  local ctr=$1
  shift
  local env=(--env SUPERVISOR_TOKEN=unused --env "SUPERVISOR_URL=https://127.0.0.1:$tls_port")
  for e in "$@"; do env+=(--env "$e"); done
  "${BUILDAH[@]}" run --isolation chroot --network host --volume "$tls/data:/data" "${env[@]}" "$ctr" \
    -- /usr/bin/meter2mqtt run --addon 2>&1 || true
}
# tls_check DESCRIPTION EXPECTED OUTPUT
tls_check() {
  echo "$3" | grep '^meter2mqtt:' || echo "$3"
  check "TLS: $1" grep -q "$2" <<<"$3"
}
ctr=$("${BUILDAH[@]}" from --quiet --pull=never "$amd64_image")
# The app retries an unreachable Supervisor for about half a minute before it says so.
tls_check "the image's roots reject a certificate from an unknown CA" 'UnknownIssuer' "$(run_tls "$ctr")"
tls_check "SSL_CERT_FILE replaces the roots" 'reached over verified TLS' \
  "$(run_tls "$ctr" SSL_CERT_FILE=/data/test-ca.pem)"
# The image's bundle with the test CA added, at the same path: the roots come from that file.
cat addon/ca-certificates.crt "$tls/ca.pem" >"$tls/bundle.pem"
"${BUILDAH[@]}" copy --quiet "$ctr" "$tls/bundle.pem" /etc/ssl/certs/ca-certificates.crt
tls_check "the roots are read from /etc/ssl/certs/ca-certificates.crt" 'reached over verified TLS' "$(run_tls "$ctr")"
"${BUILDAH[@]}" rm "$ctr" >/dev/null

# Working containers that an interrupted earlier run of the tests left behind.
"${BUILDAH[@]}" containers --format '{{.ContainerName}}' | grep '^meter2mqtt-it-' | xargs -r "${BUILDAH[@]}" rm >/dev/null || true

step "the amd64 image started as the Supervisor starts it (tests/it/addon_image.rs)"
test_log="$work/start-up.log"
start=$(date +%s)
set +e
ADDON_IMAGE="$amd64_image" cargo test --test it addon_image -- --ignored --nocapture --test-threads=1 2>&1 | tee "$test_log"
set -e
wall=$(($(date +%s) - start))
tests_passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$test_log" | awk '{s += $4} END {print s + 0}')
tests_failed=$(grep -Eo '^test result: .* [0-9]+ failed' "$test_log" | grep -Eo '[0-9]+ failed' | awk '{s += $1} END {print s + 0}')
if [ "$tests_passed" -eq 0 ] && [ "$tests_failed" -eq 0 ]; then
  echo "ERROR: no start-up test ran" >&2
  tests_failed=1
fi
passed=$((passed + tests_passed))
failed=$((failed + tests_failed))

# Earlier runs' images, untagged by this run's builds, would pile up in the store.
"${BUILDAH[@]}" rmi --prune >/dev/null 2>&1 || true

step "summary"
for arch in amd64 aarch64; do
  read -r compressed unpacked <<<"${SIZES[$arch]}"
  printf '%-8s compressed %9d bytes (%.2f MB)   unpacked %9d bytes (%.2f MB)\n' "$arch" \
    "$compressed" "$(awk "BEGIN {print $compressed / 1e6}")" "$unpacked" "$(awk "BEGIN {print $unpacked / 1e6}")"
done
echo "start-up tests (build not included): ${wall} s"
grep -o 'idle memory of the program in the image.*' "$test_log" || true

printf '\naddon-image: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
