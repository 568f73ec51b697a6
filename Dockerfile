# manifest-guard container image.
#   docker build -t manifest-guard .
#   docker run -p 5000:5000 -e MANIFEST_GUARD_UPSTREAM=https://registry.internal manifest-guard
# Listens on 0.0.0.0:5000 (proxy) and 0.0.0.0:9464 (/metrics only). The /_guard/v1 API and the
# decisions page (who pushed what, checks with lookup credentials) listen inside the container
# only, on 127.0.0.1:9465; publish them with MANIFEST_GUARD_ADMIN_API_LISTEN=0.0.0.0:9465 and
# an admin token. Every setting can come from MANIFEST_GUARD_* variables or the config file at
# MANIFEST_GUARD_CONFIG. MANIFEST_GUARD_UPSTREAM is required: without it the baked config would
# put the proxy in front of itself, which it refuses at start (one line, exit 2).
# On SIGTERM it drains (shutdown.drainDelayMs, then up to shutdown.timeoutMs for uploads in
# flight): give `docker stop -t 75` (or --stop-timeout) rather than docker's 10 s.

# The build stage's image: by default the runtime's own. A build that cannot reach the npm
# registry passes one whose npm cache holds the locked packages and is set offline (the
# project's image test does, with scripts/image-base.sh); nothing else differs.
ARG BUILD_IMAGE=node:22-bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="manifest-guard" \
      org.opencontainers.image.description="A registry proxy that stops broken multi-platform pushes and says exactly why" \
      org.opencontainers.image.source="https://github.com/manifest-guard/manifest-guard" \
      org.opencontainers.image.url="https://github.com/manifest-guard/manifest-guard" \
      org.opencontainers.image.documentation="https://github.com/manifest-guard/manifest-guard/blob/main/README.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/node:22-bookworm-slim"
ENV NODE_ENV=production \
    MANIFEST_GUARD_LISTEN=0.0.0.0:5000 \
    MANIFEST_GUARD_ADMIN_LISTEN=0.0.0.0:9464 \
    MANIFEST_GUARD_ADMIN_API_LISTEN=127.0.0.1:9465 \
    MANIFEST_GUARD_CONFIG=/etc/manifest-guard/manifest-guard.yaml
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY config/manifest-guard.yaml /etc/manifest-guard/manifest-guard.yaml
# The image's unprivileged user (node, of the base image) by number, so Kubernetes can verify
# runAsNonRoot without a runAsUser of its own; nothing is written at run time, so the root
# filesystem can be read-only (the audit file, if any, goes to a mounted volume).
USER 1000:1000
EXPOSE 5000 9464
# The check is a Node.js process of its own: on a busy 2-core node starting it took more than
# 5 s (two checks in three timed out in the image test), so it gets 10.
HEALTHCHECK --interval=15s --timeout=10s --start-period=10s --retries=3 CMD ["node", "dist/src/cli.js", "healthcheck"]
ENTRYPOINT ["node", "dist/src/cli.js"]
