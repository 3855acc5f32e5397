# hydra-mcp server image. Hydra runs from its official image beside it
# (docker-compose.yml); this image holds only our server.

# --- build: compile TypeScript and the native SQLite binding ---------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY tools ./tools
# The build marks dist/src/cli/main.js (package.json "bin") executable.
RUN npm run build && npm prune --omit=dev

# --- runtime: production dependencies and compiled code only -------------------
FROM node:22-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DATABASE_PATH=/data/hydra-mcp.sqlite
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# /data holds the SQLite file when DATABASE_URL is not set.
RUN mkdir -p /data && chown node:node /data
# The operator CLI on PATH: `docker compose exec app hydra-mcp user list`,
# `kubectl exec deploy/hydra-mcp -- hydra-mcp audit --sub …`. A symlink to the
# package.json "bin" target, as `npm install -g` would make it, without npm
# at run time; node follows it back to /app, so imports and "type": "module" resolve there.
RUN ln -s /app/dist/src/cli/main.js /usr/local/bin/hydra-mcp
USER node
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:3000/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/main.js"]
