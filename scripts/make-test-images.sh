#!/usr/bin/env bash
# Builds podwarp's test images from busybox-static (/bin/busybox), without network.
#
#   scripts/make-test-images.sh OUTDIR [--push HOST:PORT] [--repo NAME]
#
# OUTDIR/oci/                 an OCI image layout with three tags:
#     latest   one gzip layer: bin/busybox + applet symlinks, etc/{passwd,group,motd},
#              data/{a,b}.txt, tmp/
#     layered  that layer + a zstd layer adding etc/hello.txt and data/c.txt, whiting out
#              etc/motd (.wh.motd) and making data/ opaque (.wh..wh..opq): the merged rootfs has
#              etc/hello.txt, no etc/motd, and data/ holds only c.txt
#     multi    an index: linux/amd64 -> latest's manifest, linux/arm64 -> a manifest whose config
#              says arm64 (same layer), to test platform selection
#     httpd    the latest layer + a gzip layer with www/index.html; runs busybox httpd in the
#              foreground on port 80 (Cmd ["httpd","-f","-v","-p","80","-h","/www"]): the image
#              of `kubectl create deployment web --image=<registry>/podwarp/busybox:httpd`
# OUTDIR/busybox-oci.tar      the layout as a tar (podwarp image import)
# OUTDIR/busybox-docker.tar   `layered` as a docker-archive (docker save format), tagged
#                             podwarp.test/busybox:layered
# OUTDIR/digests.env          DIFF_ID1 DIFF_ID2 LAYER1 LAYER2 MANIFEST_LATEST MANIFEST_LAYERED ...
#
# --push HOST:PORT copies the three tags to docker://HOST:PORT/NAME:<tag> (NAME: --repo,
# default podwarp/busybox) with skopeo over plain HTTP, plus `latest` converted to a Docker
# schema2 manifest as tag v2s2.
set -euo pipefail

out=""
push=""
repo="podwarp/busybox"
while (($#)); do
  case "$1" in
    --push) push="$2"; shift 2 ;;
    --repo) repo="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) out="$1"; shift ;;
  esac
done
[[ -n "$out" ]] || { echo "usage: $0 OUTDIR [--push HOST:PORT] [--repo NAME]" >&2; exit 2; }
busybox=/bin/busybox
[[ -x "$busybox" ]] || { echo "$busybox missing: install busybox-static" >&2; exit 1; }

work=$(mktemp -d /tmp/podwarp-testimg.XXXXXX)
trap 'rm -rf "$work"' EXIT
layout="$out/oci"
rm -rf "$layout"
mkdir -p "$layout/blobs/sha256"
printf '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
# add_blob FILE -> prints the hex digest and stores FILE in the layout
add_blob() {
  local h
  h=$(sha "$1")
  cp "$1" "$layout/blobs/sha256/$h"
  echo "$h"
}
pack() {  # pack DIR TARFILE: a reproducible tar of DIR's content
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
    -C "$1" -cf "$2" .
}

# ---- layer 1: the busybox rootfs ----
r1="$work/rootfs1"
mkdir -p "$r1"/{bin,etc,data,tmp,root,proc,sys,dev}
chmod 1777 "$r1/tmp"
cp "$busybox" "$r1/bin/busybox"
for a in sh ash cat echo sleep httpd ls true false env id hostname wget nc ps mkdir rm touch \
         test printf grep sed head tail wc kill date uname mount umount ip ping tar tty stty; do
  ln -s busybox "$r1/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  > "$r1/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r1/etc/group"
echo "podwarp test image" > "$r1/etc/motd"
echo a > "$r1/data/a.txt"
echo b > "$r1/data/b.txt"
pack "$r1" "$work/layer1.tar"
diff1=$(sha "$work/layer1.tar")
gzip -n -9 -c "$work/layer1.tar" > "$work/layer1.tar.gz"
l1=$(add_blob "$work/layer1.tar.gz")
l1size=$(size "$work/layer1.tar.gz")

# ---- layer 2: a file added, a file whited out, an opaque dir (zstd) ----
r2="$work/rootfs2"
mkdir -p "$r2/etc" "$r2/data"
echo "hello from layer 2" > "$r2/etc/hello.txt"
: > "$r2/etc/.wh.motd"
: > "$r2/data/.wh..wh..opq"
echo c > "$r2/data/c.txt"
pack "$r2" "$work/layer2.tar"
diff2=$(sha "$work/layer2.tar")
zstd -q -19 -c "$work/layer2.tar" > "$work/layer2.tar.zst"
l2=$(add_blob "$work/layer2.tar.zst")
l2size=$(size "$work/layer2.tar.zst")

# ---- layer 3 (httpd tag): a web root ----
r3="$work/rootfs3"
mkdir -p "$r3/www"
echo "hello from podwarp" > "$r3/www/index.html"
pack "$r3" "$work/layer3.tar"
diff3=$(sha "$work/layer3.tar")
gzip -n -9 -c "$work/layer3.tar" > "$work/layer3.tar.gz"
l3=$(add_blob "$work/layer3.tar.gz")
l3size=$(size "$work/layer3.tar.gz")

env_json='["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'
# config ARCH DIFF_IDS_JSON CONFIG_JSON -> blob hex
make_config() {
  printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":%s}}' \
    "$1" "$3" "$2" > "$work/config.json"
  add_blob "$work/config.json"
}
# manifest CONFIG_HEX LAYERS_JSON -> blob hex
make_manifest() {
  local csize
  csize=$(size "$layout/blobs/sha256/$1")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":%s}' \
    "$1" "$csize" "$2" > "$work/manifest.json"
  add_blob "$work/manifest.json"
}
desc1="{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$l1\",\"size\":$l1size}"
desc2="{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"sha256:$l2\",\"size\":$l2size}"

c1=$(make_config amd64 "[\"sha256:$diff1\"]" "{\"Env\":$env_json,\"Cmd\":[\"sh\"]}")
m1=$(make_manifest "$c1" "[$desc1]")
desc3="{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$l3\",\"size\":$l3size}"
ch=$(make_config amd64 "[\"sha256:$diff1\",\"sha256:$diff3\"]" \
  "{\"Env\":$env_json,\"Cmd\":[\"httpd\",\"-f\",\"-v\",\"-p\",\"80\",\"-h\",\"/www\"],\"ExposedPorts\":{\"80/tcp\":{}}}")
mh=$(make_manifest "$ch" "[$desc1,$desc3]")
c2=$(make_config amd64 "[\"sha256:$diff1\",\"sha256:$diff2\"]" \
  "{\"Env\":$env_json,\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"cat /etc/hello.txt\"],\"WorkingDir\":\"/data\",\"User\":\"0:0\"}")
m2=$(make_manifest "$c2" "[$desc1,$desc2]")
carm=$(make_config arm64 "[\"sha256:$diff1\"]" "{\"Env\":$env_json,\"Cmd\":[\"sh\"]}")
marm=$(make_manifest "$carm" "[$desc1]")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}}]}' \
  "$marm" "$(size "$layout/blobs/sha256/$marm")" "$m1" "$(size "$layout/blobs/sha256/$m1")" \
  > "$work/index.json"
idx=$(add_blob "$work/index.json")

ref() {  # ref MEDIATYPE HEX TAG
  printf '{"mediaType":"%s","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}' \
    "$1" "$2" "$(size "$layout/blobs/sha256/$2")" "$3"
}
printf '{"schemaVersion":2,"manifests":[%s,%s,%s,%s]}' \
  "$(ref application/vnd.oci.image.manifest.v1+json "$m1" latest)" \
  "$(ref application/vnd.oci.image.manifest.v1+json "$mh" httpd)" \
  "$(ref application/vnd.oci.image.manifest.v1+json "$m2" layered)" \
  "$(ref application/vnd.oci.image.index.v1+json "$idx" multi)" > "$layout/index.json"

tar --sort=name --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$out/busybox-oci.tar" .
# docker save format, by hand (skopeo cannot convert zstd layers to a docker archive):
# manifest.json, <config hex>.json, <diffID hex>/layer.tar (uncompressed).
da="$work/docker-archive"
mkdir -p "$da/$diff1" "$da/$diff2"
cp "$layout/blobs/sha256/$c2" "$da/$c2.json"
cp "$work/layer1.tar" "$da/$diff1/layer.tar"
cp "$work/layer2.tar" "$da/$diff2/layer.tar"
printf '[{"Config":"%s.json","RepoTags":["podwarp.test/busybox:layered"],"Layers":["%s/layer.tar","%s/layer.tar"]}]' \
  "$c2" "$diff1" "$diff2" > "$da/manifest.json"
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$da" -cf "$out/busybox-docker.tar" .

cat > "$out/digests.env" <<EOT
DIFF_ID1=sha256:$diff1
DIFF_ID2=sha256:$diff2
LAYER1=sha256:$l1
LAYER2=sha256:$l2
CONFIG_LATEST=sha256:$c1
CONFIG_LAYERED=sha256:$c2
MANIFEST_LATEST=sha256:$m1
MANIFEST_LAYERED=sha256:$m2
INDEX_MULTI=sha256:$idx
MANIFEST_HTTPD=sha256:$mh
EOT

if [[ -n "$push" ]]; then
  for tag in latest layered httpd; do
    skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$layout:$tag" \
      "docker://$push/$repo:$tag"
  done
  skopeo --insecure-policy copy -q --all --dest-tls-verify=false "oci:$layout:multi" \
    "docker://$push/$repo:multi"
  # The same one-layer image as a Docker schema2 manifest (application/vnd.docker.*).
  skopeo --insecure-policy copy -q --format v2s2 --dest-tls-verify=false "oci:$layout:latest" \
    "docker://$push/$repo:v2s2"
fi
