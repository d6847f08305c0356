#!/usr/bin/env bash
# Copies the front-end libraries pinned in package.json (exact versions, package-lock.json)
# into the modules' static folders, where the Go binary embeds them. The copies are
# committed: building Parvis needs no npm; run this only to update a library.
#
#   bash web/vendor/build.sh
#
# Leaflet → modules/forms/static/vendor/leaflet/ (leaflet.js, leaflet.css, images/, LICENSE).
set -euo pipefail
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
	npm ci --ignore-scripts --no-audit --no-fund
else
	npm install --ignore-scripts --no-audit --no-fund
fi
version=$(node -p 'require("./node_modules/leaflet/package.json").version')
dest=../../modules/forms/static/vendor/leaflet
rm -rf "$dest"
mkdir -p "$dest/images"
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css "$dest/"
cp node_modules/leaflet/dist/images/*.png "$dest/images/"
cp node_modules/leaflet/LICENSE "$dest/LICENSE"
# leaflet.js ends with a source map comment; the map is not shipped.
sed -i '/^\/\/# sourceMappingURL=/d' "$dest/leaflet.js"
cat > "$dest/README.md" <<README
# Leaflet $version

npm package \`leaflet@$version\` (BSD-2-Clause, LICENSE beside this file), copied from its
\`dist/\` folder by \`web/vendor/build.sh\` (the version is pinned in \`web/vendor/package.json\`
and \`package-lock.json\`). Do not edit these files: change the version there and run the script.
README
echo "leaflet $version → $dest"
