# The Sandgate service: API and runner in one process (`npm start`). For Docker profiles, mount
# the socket of an engine that holds the sandbox images (scripts/build-images builds them):
#   docker run -v /var/run/docker.sock:/var/run/docker.sock -p 8080:8080 sandgate
# Builds FROM the same Debian base the setup seeds locally when no registry answers.
FROM debian:bookworm-slim
# Debian's nodejs/npm only bootstrap: Node 24 comes as a binary in the `node` registry package.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates nodejs npm \
 && npm install -g --prefix /usr/local node@24 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && apt-get purge -y npm nodejs && apt-get autoremove -y && rm -rf /root/.npm
COPY . .
RUN useradd --system --uid 10000 --home /app sandgate && mkdir -p /app/data && chown sandgate /app/data
ENV NODE_ENV=production HOST=0.0.0.0 SANDGATE_DATA_DIR=/app/data
USER sandgate
EXPOSE 8080
CMD ["node", "bin/sandgate.ts", "all"]
