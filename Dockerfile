# The Sandgate service image (API and runner: `node bin/sandgate.ts all|api|runner`), built by
# scripts/build-service-image without any registry: FROM the Debian base the sandbox images use
# (scripts/build-images pulls it or, where no registry answers, debootstraps it), with the build
# machine's Node 24 binary and the production node_modules staged into the build context.
#   scripts/build-service-image && docker-compose -f deploy/compose.yaml up
FROM debian:bookworm-slim
COPY node /usr/local/bin/node
# A service user, never root; the data and archive directories are its own so that named volumes
# mounted there start owned by it.
RUN groupadd --system --gid 10000 sandgate \
 && useradd --system --uid 10000 --gid 10000 --home-dir /app --shell /usr/sbin/nologin sandgate \
 && mkdir -p /app/data /var/lib/sandgate/audit-archive \
 && chown -R sandgate:sandgate /app/data /var/lib/sandgate \
 && node --version
WORKDIR /app
COPY app/ /app/
ENV NODE_ENV=production HOST=0.0.0.0 SANDGATE_DATA_DIR=/app/data \
    SANDGATE_AUDIT_ARCHIVE_DIR=/var/lib/sandgate/audit-archive
USER 10000:10000
EXPOSE 8080 9464
CMD ["node", "bin/sandgate.ts", "all"]
