# Redis for deploy/compose.yaml where no registry answers: Debian's redis-server over the same
# base as the service and sandbox images (built by scripts/build-service-image). Where a registry
# is at hand, any Redis 7 image does. AOF on, so a restart keeps queued work.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes", "--dir", "/data"]
