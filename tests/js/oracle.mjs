// One request per line on stdin, one answer per line on stdout (JSON):
//   {"regex": P, "texts": [...]}        -> [bool, ...]   new RegExp(P, "u").test(text)
//   {"schema": S, "instances": [...]}   -> [[ok, [allOf indexes that fail]], ...]
// Ajv2020 with Backstage-like options (allErrors, strict off), unicode lengths.
import readline from "node:readline";
import Ajv2020 from "ajv/dist/2020.js";

const ajv = new Ajv2020({ allErrors: true, strict: false });
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let out;
  try {
    const req = JSON.parse(line);
    if ("regex" in req) {
      const re = new RegExp(req.regex, "u");
      out = req.texts.map((t) => re.test(t));
    } else {
      const validate = ajv.compile(req.schema);
      out = req.instances.map((inst) => {
        const ok = validate(inst);
        const failing = new Set();
        for (const e of validate.errors || []) {
          const m = /^#\/allOf\/(\d+)\//.exec(e.schemaPath);
          if (m) failing.add(Number(m[1]));
        }
        return [ok, [...failing].sort((a, b) => a - b)];
      });
      ajv.removeSchema(req.schema.$id);
    }
  } catch (err) {
    out = { error: String(err && err.message ? err.message : err) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
});
