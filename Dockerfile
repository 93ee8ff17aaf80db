# hcserver in a container: `docker build -t hcserver .`, then see "Run it in a container" in the
# README. BASE is any Debian-like image with Python 3.11 or later, python3-venv and useradd.
ARG BASE=python:3.12-slim

# Stage 1: build hcserver and its dependencies into wheels, then install them into a venv that
# has no pip: the runtime stage copies only that venv.
FROM ${BASE} AS build
RUN python3 -m venv /opt/pip && python3 -m venv --without-pip /opt/hcserver
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY hcserver ./hcserver
COPY persistence ./persistence
# Behind a TLS-inspecting proxy pip needs the proxy's CA bundle: mount it into the build and name
# it, as the tests do with Podman: `--volume /etc/ssl/certs:/etc/ssl/certs:ro
# --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt`.
ARG PIP_CERT
# A current pip: an older one (Debian's) cannot build an sdist that has no pyproject.toml.
RUN /opt/pip/bin/pip install --no-cache-dir --disable-pip-version-check --upgrade pip \
    && /opt/pip/bin/pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels . \
    && /opt/pip/bin/pip --python /opt/hcserver/bin/python install --no-cache-dir \
       --disable-pip-version-check --no-index --find-links /wheels hcserver

# Stage 2: the runtime, with the venv only.
FROM ${BASE}
RUN useradd --system --user-group --uid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin hcserver \
    && mkdir /data && chown hcserver:hcserver /data
COPY --from=build /opt/hcserver /opt/hcserver
ENV PATH=/opt/hcserver/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HC_HOST=0.0.0.0 \
    HC_PORT=8000 \
    HC_DB=/data/hcserver.sqlite3
VOLUME /data
WORKDIR /data
USER hcserver
EXPOSE 8000
# No curl in the image: Python asks the status endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HC_PORT', '8000') + '/api/v3/status/', timeout=4)"]
# hcserver stops on SIGTERM: it answers the requests in flight, flushes the store and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["hcserver"]
CMD ["serve"]
