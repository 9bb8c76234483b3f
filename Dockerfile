# syntax=docker/dockerfile:1
# Portcullis' image: built with dev dependencies, shipped with production dependencies, the
# compiled dist/, bin/ and the default RuleSet only. Runs as uid/gid 65532 on distroless (no shell,
# no package manager). test/manifests/image.test.ts builds the same file set without a container
# engine, from the instructions below, and starts it; keep to FROM, WORKDIR, ENV, COPY, RUN, USER,
# EXPOSE, ENTRYPOINT and CMD, which that test understands.
#
#   docker build -t ghcr.io/portcullis/portcullis:0.1.0 .
#
# For reproducible builds pin the base images by digest (`FROM node:24-bookworm-slim@sha256:…`).

# --- build: compile TypeScript with the dev dependencies ---
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile before the sources are here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# --- deps: production dependencies only ---
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` runs tsc, a dev dependency that is not installed here.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime ---
# Debian 12 like the build stages, so any native addon matches its glibc. The nonroot variant's
# user is 65532; set numerically below so Kubernetes' runAsNonRoot can verify it.
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# package.json: "type": "module" for bin/ and dist/, and the version `portcullis` reports.
COPY package.json ./
COPY bin ./bin
COPY rules/default.yaml ./rules/default.yaml
USER 65532:65532
EXPOSE 8443
# The image is the `portcullis` command: Kubernetes' `args` (or `docker run IMAGE …`) name the
# subcommand. Without arguments it serves on 8443 with the shipped rules and a throw-away cert.
# --max-semi-space-size=4 (MiB): V8 grows its young generation to 16 MiB semi-spaces under load,
# which at thousands of admissions a second is ~20 MiB of RSS that buys no measurable throughput
# here; 4 MiB keeps the peak under 100 MiB (`npm run bench` runs the server with these flags).
# --max-old-space-size=160 (MiB): V8 sizes its heap for the machine, not the Pod, and left alone
# under a flood of large bodies it collected late enough to pass the Deployment's 256 Mi limit
# (282 MiB peak in test/server/robustness.test.ts, 181 MiB with this flag, on Node 20). Since a
# refused RuleSet is no longer parsed again on every poll, that test peaks at 160-163 MiB on Node 24
# with these flags (166 MiB in a run without this one): it stays as the cap that sizes V8 for the Pod.
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=4", "--max-old-space-size=160", "/app/bin/portcullis"]
CMD ["serve"]
