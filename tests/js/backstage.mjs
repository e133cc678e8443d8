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
import {
  DefaultNamespaceEntityPolicy,
  EntityPolicies,
  FieldFormatEntityPolicy,
  NoForeignRootFieldsEntityPolicy,
  SchemaValidEntityPolicy,
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  domainEntityV1alpha1Validator,
  groupEntityV1alpha1Validator,
  locationEntityV1alpha1Validator,
  resourceEntityV1alpha1Validator,
  systemEntityV1alpha1Validator,
  userEntityV1alpha1Validator,
} from "@backstage/catalog-model";
import { templateEntityV1beta3Validator } from "@backstage/plugin-scaffolder-common";

const policy = EntityPolicies.allOf([
  new SchemaValidEntityPolicy(),
  new DefaultNamespaceEntityPolicy(),
  new NoForeignRootFieldsEntityPolicy(),
  new FieldFormatEntityPolicy(),
]);
const validators = [
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  domainEntityV1alpha1Validator,
  groupEntityV1alpha1Validator,
  locationEntityV1alpha1Validator,
  resourceEntityV1alpha1Validator,
  systemEntityV1alpha1Validator,
  userEntityV1alpha1Validator,
  templateEntityV1beta3Validator,
];

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
