"""Assets of the offline web map: the vendored sigma.js + graphology bundle (see vendor/)."""
