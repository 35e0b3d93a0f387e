# syntax=docker/dockerfile:1
# One image for the three services (web, worker, beat: deploy/railway/*.json). Linted with
# hadolint in CI (bin/ci.sh). Debian's package versions are not pinned (DL3008): Debian replaces
# them with each security update, so a pin would break the build instead of patching it.

# --- build stage: wheels for every pinned dependency ---------------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

# --- runtime stage: slim, non-root, code read-only, static files collected at build time ---
FROM python:3.11-slim-bookworm AS runtime
# The commit this image was built from, reported by /api/health as `version` (build.yml passes
# it; Railway passes the service variable of the same name). Empty: Railway's commit variable,
# else "dev".
ARG CHEFOPS_VERSION=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH="/opt/venv/bin:$PATH" \
    DJANGO_ENV=production PORT=8000 CHEFOPS_VERSION=${CHEFOPS_VERSION}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# pg_dump must be of the server's major version (PostgreSQL 16): Debian bookworm ships 15, so the
# client comes from the PostgreSQL project's apt repository (apt.postgresql.org, "pgdg").
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && install -d /usr/share/postgresql-common/pgdg \
    && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
        https://www.postgresql.org/media/keys/ACCC4CF8.asc \
    && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc]" \
        "https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
        > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-16 \
    && rm -rf /var/lib/apt/lists/* \
    && pg_dump --version | grep -q ' 16\.' \
    && groupadd --system --gid 10001 chefops \
    && useradd --system --create-home --uid 10001 --gid chefops chefops
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code (and the collected static files) belong to root: the app user can read, not change
# them. Only the state directories it writes are its own: RUN_DIR (.run), ARCHIVE_DIR (archive)
# and BACKUP_DIR (backups) at their defaults, plus /tmp.
COPY . .
# collectstatic needs settings but no real secrets or services.
RUN DJANGO_ENV=development SECRET_KEY=build-only python manage.py collectstatic --noinput -v0 \
    && install -d -o chefops -g chefops -m 0750 /app/.run /app/archive /app/backups
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS \"http://127.0.0.1:${PORT}/api/health\" || exit 1"]
# The web service; worker and beat override it (deploy/railway/worker.json, beat.json, Procfile).
CMD ["gunicorn", "chefops.wsgi", "-c", "gunicorn.conf.py"]
