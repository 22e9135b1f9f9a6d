"""sigma.js + graphology, bundled by web/build-bundle.sh (versions in VERSIONS.txt)."""
