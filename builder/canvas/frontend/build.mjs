// Copies vis-network's standalone (dependencies bundled, CSS injected by the script) minified UMD
// build and its licences into ../static/, which the Python package ships (pyproject package-data).
import { copyFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vis = join(here, "node_modules", "vis-network");
const out = join(here, "..", "static");
copyFileSync(join(vis, "standalone", "umd", "vis-network.min.js"), join(out, "vis-network.min.js"));
copyFileSync(join(vis, "LICENSE-MIT"), join(out, "vis-network.LICENSE-MIT"));
copyFileSync(join(vis, "LICENSE-APACHE-2.0"), join(out, "vis-network.LICENSE-APACHE-2.0"));
const { version } = JSON.parse(readFileSync(join(vis, "package.json"), "utf8"));
console.log(`vis-network ${version} copied to ${out}`);
