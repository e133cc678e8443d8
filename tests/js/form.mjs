// The scaffolder form's validation, as Backstage's Stepper sets it up
// (plugins/scaffolder-react/src/next/components/Stepper/Stepper.tsx:
// `const validator = customizeValidator(); ajvErrors(validator.ajv);`):
// @rjsf/validator-ajv8's default Ajv class (draft-07) with its AJV_CONFIG,
// plus ajv-errors, so `errorMessage` replaces ajv's messages.
// One request per line on stdin, one answer per line on stdout (JSON):
//   {"schema": S, "instances": [...]} -> [[ok, [{path, keyword, message}]], ...]
import readline from "node:readline";
import Ajv from "ajv";
import ajvErrors from "ajv-errors";

const ajv = new Ajv({
  allErrors: true,
  multipleOfPrecision: 8,
  strict: false,
  verbose: true,
  discriminator: false,
});
ajvErrors(ajv);
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  let out;
  try {
    const req = JSON.parse(line);
    const validate = ajv.compile(req.schema);
    out = req.instances.map((inst) => {
      const ok = validate(inst);
      const errors = (validate.errors || []).map((e) => ({
        path: e.instancePath,
        keyword: e.keyword,
        message: e.message,
        missing: e.params && e.params.missingProperty,
      }));
      return [ok, errors];
    });
  } catch (err) {
    out = { error: String(err && err.message ? err.message : err) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
});
