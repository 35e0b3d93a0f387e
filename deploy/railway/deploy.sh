#!/usr/bin/env bash
# Deploy one commit to one Railway environment: web, worker and beat, built by Railway from the
# Dockerfile (deploy/railway/<service>.json, set as each service's config file), then wait until
# /api/health reports that commit as its `version` and run the post-deploy check. Run by
# .github/workflows/deploy-staging.yml and deploy-prod.yml from a checkout of that commit.
#
#   deploy/railway/deploy.sh ENVIRONMENT COMMIT_SHA BASE_URL
#
# Needs: the Railway CLI (`railway`), RAILWAY_TOKEN (a project token of ENVIRONMENT), the Python
# requirements (manage.py postdeploy_check), METRICS_TOKEN of the environment. On any failure it
# exits 1 and prints the release to roll back to (the one serving before the deploy).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ $# -ne 3 ]; then
  echo "usage: $0 ENVIRONMENT COMMIT_SHA BASE_URL" >&2
  exit 2
fi
environment=$1
sha=$2
base=${3%/}
services=(web worker beat)
timeout=${POSTDEPLOY_TIMEOUT:-600}
python=${PYTHON:-python}
: "${RAILWAY_TOKEN:?RAILWAY_TOKEN (a project token of the $environment environment) is not set}"
case "$sha" in
  *[!0-9a-f]* | "") echo "COMMIT_SHA must be a lowercase hex commit SHA, not '$sha'" >&2; exit 2 ;;
esac

# What serves now: the release to roll back to if this deploy fails.
previous=$(curl -fsS --max-time 10 "$base/api/health" 2>/dev/null \
  | "$python" -c 'import json, sys; print(json.load(sys.stdin).get("version") or "unknown")' \
  2>/dev/null) || previous="unknown (${base}/api/health did not answer)"
echo "Deploying $sha to $environment ($base); serving before: $previous"

fail() {
  echo "::error::Deploy of $sha to $environment FAILED: $1"
  echo "ROLL BACK to the release that served before: $previous"
  echo "  ${ROLLBACK_HINT:-in Railway, redeploy the deployment of that release on web, worker and beat}"
  exit 1
}

# The release reported by /api/health: set on every service before its build (Railway passes it
# as the Dockerfile's CHEFOPS_VERSION build argument and keeps it in the deployment's variables).
for service in "${services[@]}"; do
  railway variables --service "$service" --environment "$environment" --skip-deploys \
    --set "CHEFOPS_VERSION=$sha" >/dev/null || fail "setting CHEFOPS_VERSION on $service"
done
# web first: its pre-deploy command migrates (backward-compatible by policy, so the old worker
# and beat keep working until theirs start).
for service in "${services[@]}"; do
  echo "--- railway up: $service"
  railway up --ci --service "$service" --environment "$environment" || fail "railway up of $service"
done

echo "--- waiting for $base/api/health to report version $sha (at most ${timeout}s)"
"$python" manage.py postdeploy_check --url "$base" --expect-version "$sha" --timeout "$timeout" \
  || fail "postdeploy_check (health of the new release, 5xx share, p95)"
echo "Deployed $sha to $environment (previous release: $previous)"
