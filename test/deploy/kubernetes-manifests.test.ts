/**
 * deploy/kubernetes, the kustomize base: every manifest valid under the Kubernetes OpenAPI schemas shipped in
 * kubernetes-models (the ServiceMonitor under the Prometheus Operator CRD of @kubernetes-models/prometheus-operator),
 * with no field the schema does not declare; the kustomization lists every file; and the settings the deployment
 * depends on are there. Needs neither Postgres nor Redis; `kubectl kustomize` is run too where kubectl is installed.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { modelFor, parseManifests, schemaProblems } from "../support/manifest-schema.js";
import { keyPaths, withKeyRenamed } from "../support/tree-paths.js";

type Tree = Record<string, unknown>;
const DIR = new URL("../../deploy/kubernetes/", import.meta.url);
const KUSTOMIZATION = "kustomization.yaml";
const read = (file: string) => readFileSync(new URL(file, DIR), "utf8");
const files = readdirSync(DIR)
  .filter((f) => /\.ya?ml$/.test(f) && f !== KUSTOMIZATION)
  .sort();
const manifests = files.flatMap((file) => parseManifests(read(file), file).map((doc) => ({ file, doc })));
const kustomization = parse(read(KUSTOMIZATION), { uniqueKeys: true }) as Tree;

const one = (kind: string, name?: string) => {
  const found = manifests.filter(
    ({ doc }) => doc.kind === kind && (name === undefined || (doc.metadata as Tree).name === name),
  );
  expect(found, `${kind} ${name ?? ""}`).toHaveLength(1);
  return found[0]!.doc as Tree & { metadata: Tree; spec: Tree };
};
const podSpec = (workload: Tree) => ((workload.spec as Tree).template as Tree).spec as Tree;
const container = (workload: Tree) => (podSpec(workload).containers as Tree[])[0]!;
const labelsOf = (workload: Tree) =>
  (((workload.spec as Tree).template as Tree).metadata as Tree).labels as Tree;
const selects = (selector: Tree, labels: Tree) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v) && Object.keys(selector).length > 0;

// The fields of a kustomization kustomize documents (kubectl.docs.kubernetes.io, Kustomization reference); no
// registry package ships its schema, so the check is against this list.
const KUSTOMIZATION_FIELDS = new Set([
  "apiVersion",
  "kind",
  "metadata",
  "resources",
  "components",
  "namespace",
  "namePrefix",
  "nameSuffix",
  "labels",
  "commonAnnotations",
  "images",
  "replicas",
  "patches",
  "configMapGenerator",
  "secretGenerator",
  "generatorOptions",
]);

describe("deploy/kubernetes as a kustomize base", () => {
  it("lists every manifest file in its kustomization, and nothing else", () => {
    expect(kustomization.apiVersion).toBe("kustomize.config.k8s.io/v1beta1");
    expect(kustomization.kind).toBe("Kustomization");
    for (const key of Object.keys(kustomization)) expect(KUSTOMIZATION_FIELDS).toContain(key);
    expect([...(kustomization.resources as string[])].sort()).toEqual(files);
    expect(new Set(kustomization.resources as string[]).size).toBe(files.length);
  });

  it("holds only objects the registry schemas cover, each valid and with no undeclared field", () => {
    expect(manifests.length).toBeGreaterThanOrEqual(files.length);
    for (const { file, doc } of manifests) {
      expect(modelFor(doc), `${file}: ${doc.apiVersion} ${doc.kind}`).toBeDefined();
      expect(schemaProblems(doc), `${file} ${doc.kind}`).toEqual([]);
    }
  });

  it("refuses any manifest with one of its field names misspelled", { timeout: 120_000 }, () => {
    // Keys of free-form maps (labels and selectors, which are dotted names, and resource quantities) are names,
    // not fields: renaming them is no error.
    const cases = manifests.flatMap(({ doc }) =>
      keyPaths(doc)
        .filter(
          (path) =>
            !/[./]/.test(String(path.at(-1))) && !["requests", "limits"].includes(String(path.at(-2))),
        )
        .map((path) => ({ doc, path })),
    );
    expect(cases.length).toBeGreaterThan(200);
    const typo = fc.constantFrom(
      (k: string) => `${k}s`,
      (k: string) => k.slice(0, -1),
      (k: string) => k.replace(/[A-Z]/, (c) => c.toLowerCase()),
      (k: string) => k.replace(/[a-z]/, (c) => c.toUpperCase()),
    );
    fc.assert(
      fc.property(fc.constantFrom(...cases), typo, ({ doc, path }, rename) => {
        const key = path.at(-1) as string;
        fc.pre(rename(key) !== key);
        expect(schemaProblems(withKeyRenamed(doc, path, rename(key))), path.join(".")).not.toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("renders with kubectl kustomize into the same objects, where kubectl is installed", () => {
    const kubectl = spawnSync("kubectl", ["kustomize", "deploy/kubernetes"], { encoding: "utf8" });
    if (kubectl.error) {
      console.warn("kubectl is not installed: skipping the kustomize render");
      return;
    }
    expect(kubectl.stderr).toBe("");
    expect(kubectl.status).toBe(0);
    const rendered = parseAllDocuments(kubectl.stdout).map((d) => d.toJS() as Tree);
    const names = (docs: Tree[]) => docs.map((d) => `${d.kind}/${(d.metadata as Tree).name}`).sort();
    expect(names(rendered)).toEqual(names(manifests.map((m) => m.doc)));
    for (const doc of rendered) {
      expect(schemaProblems(doc)).toEqual([]);
      if (doc.kind !== "Namespace") expect((doc.metadata as Tree).namespace).toBe("keymesh");
    }
  });

  it("references the pepper and the database URL in a Secret, and ships no secret value", () => {
    expect(manifests.filter(({ doc }) => doc.kind === "Secret")).toEqual([]);
    expect(kustomization.secretGenerator).toBeUndefined();
    for (const workload of [one("Deployment", "keymesh"), one("Job", "keymesh-migrate")]) {
      const env = Object.fromEntries(
        (container(workload).env as Tree[]).map((e) => [e.name, e.value ?? e.valueFrom]),
      );
      expect(env.KEYMESH_PEPPER).toBeUndefined();
      expect(env.DATABASE_URL).toBeUndefined();
      const mount = (container(workload).volumeMounts as Tree[]).find((m) => m.name === "secrets")!;
      const volume = (podSpec(workload).volumes as Tree[]).find((v) => v.name === "secrets")!.secret as Tree;
      expect(volume.secretName).toBe("keymesh-secrets");
      const items = Object.fromEntries((volume.items as Tree[]).map((i) => [i.key, i.path]));
      expect(env.KEYMESH_PEPPER_FILE).toBe(`${mount.mountPath}/${items.pepper}`);
      expect(env.DATABASE_URL_FILE).toBe(`${mount.mountPath}/${items["database-url"]}`);
      expect(mount.readOnly).toBe(true);
      // 0440: owner and fsGroup only.
      expect(volume.defaultMode).toBe(0o440);
    }
  });

  it("runs as the image's user and passes only the command its entrypoint expects", () => {
    const dockerfile = readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8");
    const user = Number(/^USER (\d+)/m.exec(dockerfile)?.[1]);
    expect(dockerfile).toMatch(/^ENTRYPOINT \[.*"dist\/src\/main\.js"\]$/m);
    for (const workload of [one("Deployment", "keymesh"), one("Job", "keymesh-migrate")]) {
      expect(podSpec(workload).securityContext).toMatchObject({ runAsUser: user, runAsGroup: user });
      expect(container(workload).args).toHaveLength(1);
    }
    // The drain the service is told to do fits in the termination grace period, with time for calls in flight.
    const env = Object.fromEntries(
      (container(one("Deployment", "keymesh")).env as Tree[]).map((e) => [e.name, e.value]),
    );
    const drainSeconds = (Number(env.KEYMESH_DRAIN_MS) + Number(env.KEYMESH_SHUTDOWN_GRACE_MS)) / 1000;
    expect(drainSeconds).toBeLessThan(
      podSpec(one("Deployment", "keymesh")).terminationGracePeriodSeconds as number,
    );
  });

  it("runs the server non-root on a read-only root with no capabilities, probed on /livez, /readyz and gRPC health", () => {
    const deployment = one("Deployment", "keymesh");
    const pod = podSpec(deployment);
    const c = container(deployment);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 1000,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.enableServiceLinks).toBe(false);
    const ports = Object.fromEntries((c.ports as Tree[]).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: 8080, grpc: 9090 });
    expect(c.livenessProbe).toMatchObject({ httpGet: { path: "/livez", port: "http" } });
    expect(c.readinessProbe).toMatchObject({ httpGet: { path: "/readyz", port: "http" } });
    expect(c.startupProbe).toMatchObject({ grpc: { port: 9090 } });
    expect(c.args).toEqual(["serve"]);
    const resources = c.resources as Tree;
    expect(resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(resources.limits).toMatchObject({ memory: expect.any(String) });
    // A drain that outlives the grace period ends in SIGKILL mid-call.
    expect(pod.terminationGracePeriodSeconds as number).toBeGreaterThanOrEqual(45);
    const spread = pod.topologySpreadConstraints as Tree[];
    expect(spread.map((s) => s.topologyKey)).toEqual([
      "kubernetes.io/hostname",
      "topology.kubernetes.io/zone",
    ]);
    for (const s of spread)
      expect(selects((s.labelSelector as Tree).matchLabels as Tree, labelsOf(deployment))).toBe(true);
    expect((deployment.spec.strategy as Tree).rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
  });

  it("exposes 8080 and 9090 under Istio's http-/grpc- port names and appProtocol, selecting the server pods", () => {
    const labels = labelsOf(one("Deployment", "keymesh"));
    const service = one("Service", "keymesh");
    expect(selects(service.spec.selector as Tree, labels)).toBe(true);
    const ports = service.spec.ports as Tree[];
    expect(ports.map((p) => [p.name, p.port, p.targetPort, p.appProtocol])).toEqual([
      ["http-keymesh", 8080, "http", "http"],
      ["grpc-keymesh", 9090, "grpc", "grpc"],
    ]);
    const headless = one("Service", "keymesh-headless");
    expect(headless.spec.clusterIP).toBe("None");
    expect(selects(headless.spec.selector as Tree, labels)).toBe(true);
  });

  it("points the budget, the monitor and the network policy at the server pods and their ports", () => {
    const labels = labelsOf(one("Deployment", "keymesh"));
    const budget = one("PodDisruptionBudget", "keymesh");
    expect(selects((budget.spec.selector as Tree).matchLabels as Tree, labels)).toBe(true);
    expect(budget.spec.maxUnavailable).toBe(1);
    const monitor = one("ServiceMonitor", "keymesh");
    const service = one("Service", "keymesh");
    expect(
      selects((monitor.spec.selector as Tree).matchLabels as Tree, service.metadata.labels as Tree),
    ).toBe(true);
    expect(one("Service", "keymesh-headless").metadata.labels).not.toEqual(service.metadata.labels);
    const endpoint = (monitor.spec.endpoints as Tree[])[0]!;
    expect((service.spec.ports as Tree[]).map((p) => p.name)).toContain(endpoint.port);
    expect(endpoint.path).toBe("/metrics");
    const policy = one("NetworkPolicy", "keymesh");
    const podSelector = (policy.spec.podSelector as Tree).matchLabels as Tree;
    expect(selects(podSelector, labels)).toBe(true);
    expect(selects(podSelector, labelsOf(one("Job", "keymesh-migrate")))).toBe(true);
    const ingressPorts = ((policy.spec.ingress as Tree[])[0]!.ports as Tree[]).map((p) => p.port);
    expect(ingressPorts).toEqual([8080, 9090]);
    const egressPorts = (policy.spec.egress as Tree[]).flatMap((e) => (e.ports as Tree[]).map((p) => p.port));
    expect(egressPorts).toEqual(expect.arrayContaining([53, 5432, 6379]));
  });

  it("migrates with the image's migrate command as the same non-root user", () => {
    const job = one("Job", "keymesh-migrate");
    const c = container(job);
    expect(c.args).toEqual(["migrate"]);
    expect(c.image).toBe(container(one("Deployment", "keymesh")).image);
    expect(podSpec(job).restartPolicy).toBe("Never");
    expect(podSpec(job).securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    expect((c.securityContext as Tree).readOnlyRootFilesystem).toBe(true);
    expect(job.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
  });
});
