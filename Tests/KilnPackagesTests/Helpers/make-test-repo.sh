#!/bin/bash
# Builds a tiny signed Debian-style repository for KilnPackages tests, with real tools: dpkg-deb for the packages,
# xz/gzip for the indices, a throwaway gpg key (in a private GNUPGHOME) for InRelease.
#   make-test-repo.sh OUT
# OUT/keyring.gpg, OUT/keyring.asc  the test key (binary and armored)
# OUT/good/        the repository: suites bookworm and bookworm-updates, component main, amd64
# OUT/otherkey/    same, but InRelease signed by a key that is not in the keyring
# OUT/tampered/    same, but InRelease edited after signing
# OUT/badhash/     same, but one pool file corrupted (same size, different bytes)
set -euo pipefail
out=$(realpath -m "$1")
mkdir -p "$out"
export GNUPGHOME="$out/gnupg"
mkdir -m 700 -p "$GNUPGHOME"
trap 'gpgconf --kill gpg-agent >/dev/null 2>&1 || true' EXIT
gpgq() { gpg --batch --quiet --pinentry-mode loopback --passphrase '' "$@"; }
gpgq --quick-gen-key 'Kiln Test Repository <repo@kiln.invalid>' ed25519 sign never 2>/dev/null
gpgq --quick-gen-key 'Kiln Other Key <other@kiln.invalid>' ed25519 sign never 2>/dev/null
gpgq --export repo@kiln.invalid > "$out/keyring.gpg"
gpgq --armor --export repo@kiln.invalid > "$out/keyring.asc"

repo="$out/good"
build=$(mktemp -d)
# name version arch suite depends pre-depends provides payload-bytes
make_deb() {
    local name=$1 version=$2 arch=$3 suite=$4 depends=$5 predepends=$6 provides=$7 bytes=$8
    local dir="$build/$name-$version"
    mkdir -p "$dir/DEBIAN" "$dir/usr/share/$name"
    {
        echo "Package: $name"
        echo "Version: $version"
        echo "Architecture: $arch"
        echo "Maintainer: Kiln Tests <tests@kiln.invalid>"
        echo "Source: ${name%%-*}-src"
        [ -n "$depends" ] && echo "Depends: $depends"
        [ -n "$predepends" ] && echo "Pre-Depends: $predepends"
        [ -n "$provides" ] && echo "Provides: $provides"
        echo "Description: Kiln test package $name"
        echo " A package built for the KilnPackages tests."
    } > "$dir/DEBIAN/control"
    head -c "$bytes" /dev/urandom > "$dir/usr/share/$name/payload"
    local first=${name:0:1}
    mkdir -p "$repo/pool/main/$first/$name"
    local file="pool/main/$first/$name/${name}_${version#*:}_${arch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$dir" "$repo/$file" >/dev/null
    {
        dpkg-deb -f "$repo/$file"
        echo "Filename: $file"
        echo "Size: $(stat -c %s "$repo/$file")"
        echo "SHA256: $(sha256sum "$repo/$file" | cut -d' ' -f1)"
        echo
    } >> "$build/Packages-$suite"
}
make_deb kiln-hello 1.0-1 amd64 bookworm \
    "kiln-libfoo (>= 1.0) | kiln-missing, kiln-virtual-shell, libc-any:any" "kiln-base" "" 300000
make_deb kiln-libfoo 1.0-1 amd64 bookworm "" "" "" 2000
make_deb kiln-libfoo 1.2-1 amd64 bookworm-updates "" "" "" 2000
make_deb kiln-base 2:0.5 all bookworm "" "" "" 1000
make_deb kiln-shell 1.0 amd64 bookworm "" "" "kiln-virtual-shell, libc-any (= 1)" 1000
make_deb kiln-broken 1.0 amd64 bookworm "kiln-nowhere | kiln-nothing (>= 2)" "" "" 500

date_of() { case $1 in bookworm) echo "Sat, 01 Jun 2024 12:00:00 UTC";; *) echo "Sun, 02 Jun 2024 12:00:00 UTC";; esac; }
for suite in bookworm bookworm-updates; do
    dist="$repo/dists/$suite"
    mkdir -p "$dist/main/binary-amd64"
    cp "$build/Packages-$suite" "$dist/main/binary-amd64/Packages"
    xz -k -9 "$dist/main/binary-amd64/Packages"
    gzip -k -9 -n "$dist/main/binary-amd64/Packages"
    {
        echo "Origin: Kiln Tests"
        echo "Suite: $suite"
        echo "Codename: $suite"
        echo "Date: $(date_of $suite)"
        echo "Architectures: amd64"
        echo "Components: main"
        echo "SHA256:"
        for f in Packages Packages.xz Packages.gz; do
            p="$dist/main/binary-amd64/$f"
            echo " $(sha256sum "$p" | cut -d' ' -f1) $(stat -c %s "$p") main/binary-amd64/$f"
        done
    } > "$dist/Release"
    gpgq --local-user repo@kiln.invalid --clearsign -o "$dist/InRelease" "$dist/Release"
done

cp -a "$repo" "$out/otherkey"
for suite in bookworm bookworm-updates; do
    gpgq --yes --local-user other@kiln.invalid --clearsign -o "$out/otherkey/dists/$suite/InRelease" \
        "$repo/dists/$suite/Release"
done
cp -a "$repo" "$out/tampered"
sed -i 's/^Date: .*/Date: Mon, 01 Jan 2035 00:00:00 UTC/' "$out/tampered/dists/bookworm/InRelease"
cp -a "$repo" "$out/badhash"
hello="$out/badhash/pool/main/k/kiln-hello/kiln-hello_1.0-1_amd64.deb"
size=$(stat -c %s "$hello")
printf 'X' | dd of="$hello" bs=1 seek=$((size - 100)) conv=notrunc status=none
rm -rf "$build"
echo "$out"
