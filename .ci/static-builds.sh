#!/usr/bin/env bash
# Static musl release binaries for the add-on's two architectures (amd64, aarch64), checked with
# `file`, the aarch64 one run under qemu-user, both copied into addon/ where the Dockerfile picks
# them up. There is no Docker engine here: these binaries are what the add-on image would contain.
#
# A target rustup cannot fetch is reported with a loud SKIPPED: line and left out; any other
# failure (compile, link, not static, does not run) fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }
skipped() { printf '\n!!!!!!!! SKIPPED: %s\n' "$*"; }

declare -A ARCH_OF=([x86_64-unknown-linux-musl]=amd64 [aarch64-unknown-linux-musl]=aarch64)
TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

# apparmor_parser lives in /usr/sbin.
export PATH="$PATH:/usr/sbin:/sbin"

install_debs() {
  local missing=()
  command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
  command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-aarch64-linux-gnu)
  command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
  command -v file >/dev/null 2>&1 || missing+=(file)
  command -v apparmor_parser >/dev/null 2>&1 || missing+=(apparmor)
  if [ ${#missing[@]} -gt 0 ]; then
    step "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_debs

# The Supervisor loads addon/apparmor.txt into the host's AppArmor; a syntax error there would stop
# the add-on from starting. -Q: parse and compile only, nothing is loaded into this kernel.
step "apparmor_parser: addon/apparmor.txt"
if ! parsed=$(apparmor_parser -Q -K --skip-read-cache addon/apparmor.txt 2>&1); then
  printf '%s\n' "$parsed" >&2
  echo "ERROR: addon/apparmor.txt does not parse" >&2
  exit 1
fi
echo "addon/apparmor.txt parses"

# ring compiles C: the x86_64 musl build uses musl-gcc (cc's default for that target); the aarch64
# build uses Debian's cross gcc for both ring's C files and the link, with Rust's own musl CRT.
export CC_x86_64_unknown_linux_musl=musl-gcc
export CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc

target_dir="${CARGO_TARGET_DIR:-target}"
built=()
for target in "${TARGETS[@]}"; do
  arch="${ARCH_OF[$target]}"
  step "rustup target add $target"
  if ! rustup target list --installed | grep -qx "$target" && ! rustup target add "$target"; then
    skipped "rustup could not fetch $target: no static $arch binary in this run"
    continue
  fi

  step "cargo build --release --locked --target $target"
  start=$(date +%s)
  cargo build --release --locked --target "$target"
  echo "built in $(($(date +%s) - start)) s"

  bin="$target_dir/$target/release/meter2mqtt"
  description=$(file -b "$bin")
  echo "file: $description"
  if ! grep -Eq 'statically linked|static-pie linked' <<<"$description"; then
    echo "ERROR: $bin is not statically linked; the add-on's base image must not need a libc" >&2
    exit 1
  fi
  case "$arch" in
    amd64) grep -q 'x86-64' <<<"$description" ;;
    aarch64) grep -q 'ARM aarch64' <<<"$description" ;;
  esac || { echo "ERROR: $bin is not an $arch binary" >&2; exit 1; }

  cp "$bin" "addon/meter2mqtt-$arch"
  built+=("$arch")
done

step "binary sizes"
for arch in "${built[@]}"; do
  size=$(stat -c %s "addon/meter2mqtt-$arch")
  printf '%-8s %9d bytes (%d KiB)  addon/meter2mqtt-%s\n' "$arch" "$size" $((size / 1024)) "$arch"
done

run_checks() {
  local runner=("$@")
  step "${runner[*]} --version"
  local version
  version=$("${runner[@]}" --version)
  echo "$version"
  if ! grep -q "meter2mqtt" <<<"$version"; then
    echo "ERROR: --version did not name the program (got: ${version:-nothing})" >&2
    exit 1
  fi

  step "${runner[*]} demo"
  # The demo runs the whole pipeline on built-in data with its own broker and then exits.
  timeout 600 "${runner[@]}" demo
}

for arch in "${built[@]}"; do
  case "$arch" in
    amd64) run_checks "addon/meter2mqtt-amd64" ;;
    aarch64) run_checks qemu-aarch64 "addon/meter2mqtt-aarch64" ;;
  esac
done

if [ ${#built[@]} -lt ${#TARGETS[@]} ]; then
  skipped "only ${built[*]:-no} static binaries were built; see the SKIPPED: lines above"
fi
