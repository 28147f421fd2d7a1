// Copies the browser builds of our front-end dependencies from node_modules into ../static/vendor/.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const vendor = join(here, "..", "static", "vendor");

function vendorPackage(name, files) {
  const source = join(here, "node_modules", name);
  const version = JSON.parse(readFileSync(join(source, "package.json"), "utf8")).version;
  const target = join(vendor, name);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const [from, to] of files) {
    cpSync(join(source, from), join(target, to), { recursive: true });
  }
  cpSync(join(source, "LICENSE"), join(target, "LICENSE"));
  writeFileSync(join(target, "VERSION"), `${name} ${version}\n`);
  console.log(`vendored ${name} ${version} into ${target}`);
}

vendorPackage("leaflet", [
  ["dist/leaflet.js", "leaflet.js"],
  ["dist/leaflet.css", "leaflet.css"],
  ["dist/images", "images"],
]);
