// Backstage's own entity validation, as the catalog backend runs it: one JSON
// entity per line on stdin, one answer per line on stdout:
//   {"ok": true, "entity": <entity after the policies>} or {"ok": false, "error": "..."}
//
// What runs (from @backstage/catalog-model and @backstage/plugin-scaffolder-common,
// pinned in package.json):
//   * the default entity policies of the catalog backend: SchemaValidEntityPolicy,
//     DefaultNamespaceEntityPolicy, NoForeignRootFieldsEntityPolicy and
//     FieldFormatEntityPolicy (EntityPolicies.allOf, as in the catalog's
//     DefaultCatalogProcessingOrchestrator);
//   * the kind validators of BuiltinKindsEntityProcessor (Component, API, ...)
//     and of the scaffolder's entity processor (Template v1beta3): an entity
//     whose apiVersion/kind no validator knows is refused, as the catalog does.
import readline from "node:readline";
import * as model from "@backstage/catalog-model";
import { templateEntityV1beta3Validator } from "@backstage/plugin-scaffolder-common";

const policy = model.EntityPolicies.allOf([
  new model.SchemaValidEntityPolicy(),
  new model.DefaultNamespaceEntityPolicy(),
  new model.NoForeignRootFieldsEntityPolicy(),
  new model.FieldFormatEntityPolicy(),
]);
// every built-in kind validator the package exports (componentEntityV1alpha1Validator, ...)
const validators = [
  ...Object.entries(model)
    .filter(([name]) => /^[a-z]+EntityV1alpha1Validator$/.test(name))
    .map(([, v]) => v),
  templateEntityV1beta3Validator,
];
if (validators.length < 9) throw new Error("catalog-model exports fewer kind validators than expected");

async function validate(entity) {
  const out = await policy.enforce(entity);
  if (!out) throw new Error("refused by the entity policies");
  for (const v of validators) {
    if (await v.check(out)) return out;
  }
  throw new Error(`no validator for ${out.apiVersion} ${out.kind}`);
}

const rl = readline.createInterface({ input: process.stdin });
const queue = [];
let busy = false;
async function drain() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    const line = queue.shift();
    let answer;
    try {
      answer = { ok: true, entity: await validate(JSON.parse(line)) };
    } catch (err) {
      answer = { ok: false, error: String(err && err.message ? err.message : err) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  busy = false;
}
rl.on("line", (line) => {
  queue.push(line);
  drain();
});
