import { IstioOperator } from "@kubernetes-models/istio/install.istio.io/v1alpha1";
import { AuthorizationPolicy } from "@kubernetes-models/istio/security.istio.io/v1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { Namespace, Service, ServiceAccount } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";
import { keyPaths, type Path, valueAt, withValue } from "./tree-paths.js";

/**
 * Kubernetes objects checked against the schemas the registry packages ship: the Kubernetes OpenAPI schemas
 * (kubernetes-models), the Prometheus Operator CRDs (@kubernetes-models/prometheus-operator) and Istio's CRDs
 * (@kubernetes-models/istio), each compiled into the model's validate().
 *
 * Those schemas, like the API server's OpenAPI, do not forbid unknown fields, and an API server with strict field
 * validation (kubectl's default) rejects them; a misspelled optional field would otherwise pass. So every key is
 * also probed: its value is swapped for one of another JSON type, and if the schema still accepts the object, the
 * schema does not know the key.
 */

/** A model class of those packages. */
export interface SchemaModel {
  new (data: never): { validate(): void };
}

const MODELS: Record<string, SchemaModel> = {
  "v1/Namespace": Namespace,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "batch/v1/Job": Job,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "security.istio.io/v1/AuthorizationPolicy": AuthorizationPolicy,
  "install.istio.io/v1alpha1/IstioOperator": IstioOperator,
} as Record<string, SchemaModel>;

type Tree = Record<string, unknown>;

/** The model for an object's apiVersion and kind, or undefined when none of the packages has it. */
export function modelFor(doc: Tree): SchemaModel | undefined {
  return MODELS[`${doc.apiVersion}/${doc.kind}`];
}

/** The documents of a YAML text, parsed strictly: a syntax error or a duplicate key throws. */
export function parseManifests(text: string, file: string): Tree[] {
  return parseAllDocuments(text).map((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${file} document ${i}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw new Error(`${file} document ${i} is not an object`);
    return value as Tree;
  });
}

function validationError(Model: SchemaModel, doc: unknown): string | undefined {
  try {
    new Model(structuredClone(doc) as never).validate();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** A value no schema that accepted `value` also accepts, unless it accepts anything there. */
function otherKind(value: unknown): unknown {
  return typeof value === "object" && value !== null ? true : { "keymesh-probe": [] };
}

/** Where the schema accepts any value: paths of keys it does not declare (see the module comment). */
export function undeclaredKeys(Model: SchemaModel, doc: Tree): Path[] {
  return keyPaths(doc).filter(
    (path) => validationError(Model, withValue(doc, path, otherKind(valueAt(doc, path)))) === undefined,
  );
}

/** Everything wrong with `doc` under its schema: the validation error, then each undeclared key. */
export function schemaProblems(doc: Tree): string[] {
  const Model = modelFor(doc);
  if (!Model) return [`no schema for ${doc.apiVersion} ${doc.kind}`];
  const invalid = validationError(Model, doc);
  if (invalid) return [invalid];
  return undeclaredKeys(Model, doc).map(
    (path) => `${path.join(".")}: not a field of ${doc.apiVersion} ${doc.kind}`,
  );
}
