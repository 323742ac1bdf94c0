# Email Assistant: one image for the server (`serve`, the default) and the job workers (`worker`).
# Build: docker build -t email-assistant .   Run with docker-compose.yml, or see docs/containers.md.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 ea \
    && useradd --system --uid 10001 --gid ea --home-dir /app --no-create-home --shell /usr/sbin/nologin ea

WORKDIR /app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when the dependencies change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the code, installed without dependencies. Editable on purpose: migrations/ and prompts/ are read from
# beside the packages (agent/db.py, agent/prompts.py), so the code runs from /app.
COPY README.md ./
COPY migrations ./migrations
COPY prompts ./prompts
COPY agent ./agent
COPY graphs ./graphs
COPY runtime ./runtime
COPY server ./server
RUN pip install --no-deps -e . \
    && mkdir -p /data \
    && chown ea:ea /data

# Local data (the generated local key; the embedded PostgreSQL when DATABASE_URL is unset).
ENV EA_DATA_DIR=/data \
    EA_HOST=0.0.0.0 \
    EA_PORT=8000
VOLUME ["/data"]
EXPOSE 8000 9101

USER ea

# No curl in slim images: the standard library asks /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('EA_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["email-assistant"]
CMD ["serve"]
