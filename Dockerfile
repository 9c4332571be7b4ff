# keymesh: API-key service for service meshes.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production KEYMESH_HOST=0.0.0.0 KEYMESH_DATA_DIR=/data
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY tsconfig.json ./
COPY gen ./gen
COPY src ./src
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# 8080: KeyAdmin/KeyVerify over Connect, gRPC and gRPC-Web, HTTP ext_authz at /authz; 9090: Envoy Check and KeyVerify on grpc-js.
EXPOSE 8080 9090
ENTRYPOINT ["node", "--import", "tsx", "src/main.ts"]
CMD ["serve"]
