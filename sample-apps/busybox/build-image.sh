#!/usr/bin/env bash
# Builds a linux/amd64 OCI image layout holding Debian's static busybox: the Linux-fallback
# sample, made without downloading any base image. One tar+gzip layer (deterministic: sorted
# names, owner 0, mtime 0), config with Cmd ["sh"], an index.json tagged TAG.
#
#   sample-apps/busybox/build-image.sh OUT_DIR [TAG]      (TAG defaults to 1)
#   ROOTFS_OUT=DIR ...   also leave the unpacked rootfs in DIR (for `runc run` references)
#
# Push it with skopeo, e.g. to scripts/local-registry.sh's registry:
#   skopeo --insecure-policy copy --dest-tls-verify=false oci:OUT_DIR:1 docker://127.0.0.1:5000/busybox:1
set -euo pipefail
out="${1:?usage: build-image.sh OUT_DIR [TAG]}"
tag="${2:-1}"
busybox="${BUSYBOX:-/bin/busybox}"

if [ ! -x "$busybox" ]; then
    echo "build-image: $busybox is missing: apt-get install busybox-static (scripts/install-test-deps.sh does)" >&2
    exit 1
fi
# Debian's dynamic `busybox` package also installs /bin/busybox; it cannot run in a rootfs
# without a libc.
if command -v file >/dev/null && file -L "$busybox" | grep -q 'dynamically linked'; then
    echo "build-image: $busybox is dynamically linked; install busybox-static instead" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"
# The applets the samples and tests use; anything else runs as `busybox <applet>`.
for applet in sh ash cat date echo env false grep head hostname id kill ls mkdir printf ps rm \
    sed sleep sort tail tee test touch true wc yes; do
    ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$work/layer.tar" .
gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"

mkdir -p "$out/blobs/sha256"
blob() { # FILE -> prints sha256:<hex>, after copying FILE into the layout
    local hex
    hex="$(sha256sum "$1" | cut -d' ' -f1)"
    cp "$1" "$out/blobs/sha256/$hex"
    echo "sha256:$hex"
}
size() { stat -c %s "$1"; }

diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
layer_digest="$(blob "$work/layer.tar.gz")"
cat >"$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["$diff_id"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"sample-apps/busybox/build-image.sh ($(basename "$busybox") from Debian busybox-static)"}]}
JSON
config_digest="$(blob "$work/config.json")"
cat >"$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$config_digest","size":$(size "$work/config.json")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$layer_digest","size":$(size "$work/layer.tar.gz")}]}
JSON
manifest_digest="$(blob "$work/manifest.json")"
printf '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
cat >"$out/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"$manifest_digest","size":$(size "$work/manifest.json"),"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"$tag"}}]}
JSON
if [ -n "${ROOTFS_OUT:-}" ]; then
    mkdir -p "$ROOTFS_OUT"
    cp -a "$root/." "$ROOTFS_OUT/"
fi
echo "$manifest_digest"
