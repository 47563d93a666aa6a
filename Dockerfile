# SPDX-License-Identifier: Apache-2.0
# kafka-redis-bridge container image.
#
# Two stages on Debian 13 (trixie-slim), whose apt has librdkafka 2.8.0 (the
# bridge needs 2.6.1 or newer; on Debian 12 `make deps` builds that same
# Debian package from source instead, see scripts/librdkafka.sh):
#   build    installs the Debian packages of scripts/deps.sh's `build` group
#            (on trixie: librdkafka-dev from apt, nothing built from source)
#            and builds with the same make targets as CI: `make all` (with
#            CI=true, so -Werror), then `make install` into /out.
#   runtime  only the shared libraries the binary links, and CA certificates
#            for TLS to the brokers; runs as the numeric non-root user 65532.
#            scripts/chart-check.sh checks that the package list below is
#            exactly the run-time packages that trixie's -dev packages of the
#            linked libraries pin (apt-cache show, through trixie-apt.sh).
#
#   make image      (docker build --build-arg VERSION="$(scripts/version.sh)" ...)
#   docker run --rm -p 8080:8080 -v "$PWD/my-config:/etc/kafka-redis-bridge:ro" \
#       -e K2R_REDIS_PASSWORD_FILE=/run/secrets/redis kafka-redis-bridge
#
# The configuration is read from /etc/kafka-redis-bridge/bridge.yaml (the
# example config until something is mounted there; the Helm chart mounts its
# ConfigMap as that directory). Credentials come from K2R_* environment
# variables or K2R_*_FILE files, never from the image.

ARG DEBIAN_IMAGE=debian:trixie-slim

FROM ${DEBIAN_IMAGE} AS build
WORKDIR /src
# deps.sh on its own first: the package layer is reused until it changes.
COPY scripts/deps.sh scripts/deps.sh
# apt's lists first: deps.sh asks apt-cache whether librdkafka-dev is new enough.
RUN apt-get update && scripts/deps.sh build && rm -rf /var/lib/apt/lists/*
COPY . .
# The build context has no .git, so scripts/version.sh could only read the
# VERSION file: the version (a tag, or VERSION plus the commit) is passed in
# by `make image`, and shows in `kafka-redis-bridge version`, k2r_build_info
# and the label below. No default here: the VERSION file is its one place.
ARG VERSION
ENV CI=true
RUN test -n "${VERSION}" || { echo "the build argument VERSION is required (make image passes it)" >&2; exit 1; } \
 && make -j"$(nproc)" VERSION="${VERSION}" all \
 && make VERSION="${VERSION}" install-bin DESTDIR=/out PREFIX=/usr/local

FROM ${DEBIAN_IMAGE} AS runtime
ARG VERSION
LABEL org.opencontainers.image.title="kafka-redis-bridge" \
      org.opencontainers.image.description="Kafka consumer group that publishes thin notifications on Redis Pub/Sub" \
      org.opencontainers.image.version="${VERSION}"
# The runtime halves of the build group's -dev packages (their names on
# Debian 13), and CA certificates for ssl.ca.location's default. Versions are
# not pinned: trixie's security updates replace them, and a pinned version
# that has left the archive would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates \
        libhiredis1.1.0 \
        libjansson4 \
        libmicrohttpd12t64 \
        librdkafka1 \
        libsimdjson25 \
        libssl3t64 \
        libyaml-0-2 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 k2r \
 && useradd --no-log-init --uid 65532 --gid 65532 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin k2r
COPY --from=build /out/usr/local/ /usr/local/
COPY --from=build /src/config/bridge.example.yaml /etc/kafka-redis-bridge/bridge.yaml
# Fails the build when a shared library is missing from the list above, or
# when the binary names another version than the label.
RUN v="$(/usr/local/bin/kafka-redis-bridge version)" \
 && case "$v" in "kafka-redis-bridge ${VERSION} ("*) ;; *) echo "$v: not ${VERSION}" >&2; exit 1 ;; esac

USER 65532:65532
EXPOSE 8080
# SIGTERM (the default stop signal) drains, commits and leaves the group.
ENTRYPOINT ["/usr/local/bin/kafka-redis-bridge"]
CMD ["run", "-c", "/etc/kafka-redis-bridge/bridge.yaml"]
