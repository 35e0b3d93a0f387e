# syntax=docker/dockerfile:1
# --- build stage: wheels for every pinned dependency ---------------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt

# --- runtime stage: slim, non-root, static files collected at build time -------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH="/opt/venv/bin:$PATH" \
    DJANGO_ENV=production PORT=8000
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 chefops
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=chefops:chefops . .
# collectstatic needs settings but no real secrets or services.
RUN DJANGO_ENV=development SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && chown -R chefops:chefops /app/staticfiles
USER chefops
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${PORT}/api/health" || exit 1
CMD ["gunicorn", "chefops.wsgi", "-c", "gunicorn.conf.py"]
