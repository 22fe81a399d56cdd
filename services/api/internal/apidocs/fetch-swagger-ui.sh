#!/bin/sh
# Refreshes the vendored Swagger UI assets in ./swagger from the npm package
# swagger-ui-dist. The version and the tarball's integrity are pinned; to
# upgrade, change both (npm view swagger-ui-dist@<v> dist.integrity), run this
# script and commit the result. index.html in ./swagger is ours and is kept.
#
# Usage: ./fetch-swagger-ui.sh        (needs npm, tar, openssl, base64)
set -eu

VERSION=5.35.0
INTEGRITY='sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ=='

# Only what index.html loads, plus the licence texts (Apache-2.0 needs
# LICENSE and NOTICE; the *.LICENSE.txt files list the bundled third-party code).
FILES="swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js favicon-32x32.png
LICENSE NOTICE swagger-ui-bundle.js.LICENSE.txt swagger-ui-standalone-preset.js.LICENSE.txt"

here=$(cd "$(dirname "$0")" && pwd)
dest="$here/swagger"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

(cd "$tmp" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tgz="$tmp/swagger-ui-dist-$VERSION.tgz"

got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 | tr -d '\n')"
if [ "$got" != "$INTEGRITY" ]; then
	echo "integrity mismatch for swagger-ui-dist@$VERSION: got $got" >&2
	exit 1
fi

tar -xzf "$tgz" -C "$tmp"
mkdir -p "$dest"
for f in $FILES; do
	cp "$tmp/package/$f" "$dest/$f"
done
# The source maps are not vendored; drop the comments that point at them so
# browsers do not request missing files.
for f in swagger-ui-bundle.js swagger-ui-standalone-preset.js swagger-ui.css; do
	sed -i.bak -e 's#//\# sourceMappingURL=[^ ]*\.map##' -e 's#/\*\# sourceMappingURL=[^ ]*\.map\*/##' "$dest/$f"
	rm -f "$dest/$f.bak"
done
echo "$VERSION" >"$dest/VERSION"
echo "swagger-ui-dist $VERSION copied to $dest"
