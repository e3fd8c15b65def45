#!/usr/bin/env bash
# Property-based API tests: run schemathesis against a live scantag server and fail on any
# response that is a server error or does not match the OpenAPI document it serves.
#
#   tests/schemathesis/run.sh sqlite|mysql
#
# One server per invocation, on random ports, with a fresh database (a SQLite file in a temp
# directory, or a fresh MariaDB/MySQL database + a unique Redis key prefix), a tenant, an admin,
# a sales rep, a visitor and a few fixtures so that operations with ids hit real rows. Then
# schemathesis runs against http://HOST:PORT/api/v1/openapi.json as the admin and as the
# visitor, each once with a fixed seed and once with a random one (printed, to reproduce:
# SCHEMATHESIS_RANDOM_SEED=<seed>).
#
# Environment:
#   SCANTAG_BIN                  server binary (default: target/debug/scantag)
#   SCHEMATHESIS                 schemathesis executable (default: target/schemathesis-venv/bin/schemathesis)
#   SCANTAG_TEST_MYSQL_URL       MySQL server without database (default: mysql://root@127.0.0.1:3306)
#   SCANTAG_TEST_REDIS_URL       Redis for the mysql backend (default: redis://127.0.0.1:6379/0)
#   SCHEMATHESIS_SEED            the fixed seed (default: 1)
#   SCHEMATHESIS_RANDOM_SEED     the "random" seed (default: drawn now)
#   SCHEMATHESIS_MAX_TIME        seconds per main run (default: 50; four main runs per backend)
#   SCHEMATHESIS_MAX_EXAMPLES    max examples per operation and cycle (default: 25)
#   SCHEMATHESIS_WORKERS         concurrent schemathesis workers (default: 1, see below)
#   SCHEMATHESIS_OUT             where logs and reports go (default: a fresh temp directory)
set -euo pipefail

usage() { echo "usage: $0 sqlite|mysql" >&2; exit 2; }
[ $# -eq 1 ] || usage
BACKEND=$1
case "$BACKEND" in sqlite | mysql) ;; *) usage ;; esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${SCANTAG_BIN:-$ROOT/target/debug/scantag}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
ST=${SCHEMATHESIS:-$ROOT/target/schemathesis-venv/bin/schemathesis}
case "$ST" in /*) ;; *) ST=$ROOT/$ST ;; esac
MYSQL_URL=${SCANTAG_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}
REDIS_URL=${SCANTAG_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
SEED=${SCHEMATHESIS_SEED:-1}
RANDOM_SEED=${SCHEMATHESIS_RANDOM_SEED:-$(python3 -c 'import secrets; print(secrets.randbelow(2**31))')}
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-50}
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-25}
# One worker: with several, schemathesis' threads build Python ASTs at once (Hypothesis reads
# the source of filter lambdas) and CPython 3.11 fails with "AST constructor recursion depth
# mismatch" (python/cpython#106905); one also keeps a seeded run's order of requests fixed.
WORKERS=${SCHEMATHESIS_WORKERS:-1}
# Exactly these checks: they hold for any request, valid or not, without knowing the API's
# semantics (the other checks need stateful knowledge or produce noise for this API).
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance

[ -x "$BIN" ] || { echo "no server binary at $BIN (build it, or set SCANTAG_BIN)" >&2; exit 1; }
[ -x "$ST" ] || { echo "no schemathesis at $ST (make schemathesis installs it)" >&2; exit 1; }

# The server reads every SCANTAG_* variable as a setting and refuses unknown ones (SCANTAG_BIN
# would be one), and a developer's own SCANTAG_DATABASE_URL must never be fuzzed: start from a
# clean slate and export exactly the settings of this run. SCANTAG_TEST_* are ignored by the
# server and already read above.
while IFS='=' read -r name _; do
  case "$name" in SCANTAG_*) unset "$name" ;; esac
done < <(env)

OUT=${SCHEMATHESIS_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/scantag-schemathesis-$BACKEND.XXXXXX")}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DATA_DIR=$(mktemp -d "$OUT/data.XXXXXX")
SERVER_LOG=$OUT/server.log
# Run from the output directory so that no ./scantag.toml of the caller is picked up and
# schemathesis writes nothing into the work tree.
cd "$OUT"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
API_PORT=$(free_port)
MOCK_PORT=$(free_port)
while [ "$MOCK_PORT" = "$API_PORT" ]; do MOCK_PORT=$(free_port); done
API=http://127.0.0.1:$API_PORT
MOCK=http://127.0.0.1:$MOCK_PORT
RUN_ID=$(python3 -c 'import secrets; print(secrets.token_hex(4))')

export SCANTAG_LISTEN=127.0.0.1:$API_PORT
export SCANTAG_WECHAT__MOCK_LISTEN=127.0.0.1:$MOCK_PORT
export SCANTAG_DATA_DIR=$DATA_DIR
export SCANTAG_LOG__FORMAT=json
# The runs take minutes; a token that expired half-way would turn every answer into a 401.
export SCANTAG_JWT__ACCESS_TTL_SECS=3600

SERVER_PID=
DB_NAME=
mysql_cli() { mariadb --protocol=tcp "${MYSQL_ARGS[@]}" "$@"; }
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$DB_NAME" ]; then
    mysql_cli -e "DROP DATABASE IF EXISTS \`$DB_NAME\`" || echo "could not drop database $DB_NAME" >&2
    # Cached QR codes live for days; nothing else reads this run's prefix.
    if [ -n "${SCANTAG_CACHE_PREFIX:-}" ] && command -v redis-cli >/dev/null; then
      redis-cli -u "$REDIS_URL" --scan --pattern "$SCANTAG_CACHE_PREFIX:*" |
        xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
    fi
  fi
  echo "server log: $SERVER_LOG"
  echo "schemathesis logs and reports: $OUT"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$BACKEND" = mysql ]; then
  # host, port, user and password for the mariadb CLI, from the URL the e2e suite uses too.
  mapfile -t MYSQL_ARGS < <(python3 - "$MYSQL_URL" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
print(f"--host={u.hostname or '127.0.0.1'}")
print(f"--port={u.port or 3306}")
print(f"--user={urllib.parse.unquote(u.username or 'root')}")
if u.password:
    print(f"--password={urllib.parse.unquote(u.password)}")
EOF
  )
  DB_NAME=scantag_fuzz_$RUN_ID
  # As the e2e suite (tests/support) and the benchmarks create theirs.
  mysql_cli -e "CREATE DATABASE \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
  export SCANTAG_DATABASE_URL=${MYSQL_URL%/}/$DB_NAME
  export SCANTAG_REDIS_URL=$REDIS_URL
  # Nothing of another run (or of the e2e suite) shares this run's keys.
  export SCANTAG_CACHE_PREFIX=scantag_fuzz_$RUN_ID
else
  export SCANTAG_DATABASE_URL="sqlite://$DATA_DIR/scantag.db?mode=rwc"
fi

echo "== scantag on $BACKEND: API $API, WeChat mock $MOCK, data $DATA_DIR${DB_NAME:+, database $DB_NAME}"
"$BIN" migrate >/dev/null
TENANT_OUT=$("$BIN" admin create-tenant --name "模糊测试 $RUN_ID")
TENANT_ID=$(sed -n 's/^tenant_id: //p' <<<"$TENANT_OUT")
INVITE=$(sed -n 's/^invite_code: //p' <<<"$TENANT_OUT")
SALES_INVITE=$("$BIN" admin create-invite --tenant "$TENANT_ID" --role sales | sed -n 's/^invite_code: //p')
if [ -z "$TENANT_ID" ] || [ -z "$INVITE" ] || [ -z "$SALES_INVITE" ]; then
  echo "admin create-tenant/create-invite printed no tenant or invite:" >&2
  echo "$TENANT_OUT" >&2
  exit 1
fi

# Migrations already ran; the server still checks them (SCANTAG_RUN_MIGRATIONS defaults to on).
"$BIN" serve >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$API/readyz" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited; its log:" >&2; tail -50 "$SERVER_LOG" >&2; exit 1; }
  sleep 0.2
done
curl -fsS -o /dev/null "$API/readyz" || { echo "the server did not get ready" >&2; exit 1; }
curl -fsS -o /dev/null "$MOCK/__mock/stats" || { echo "the WeChat mock is not on $MOCK" >&2; exit 1; }

# json FIELD: read a JSON document on stdin and print FIELD (a dotted path).
json() {
  python3 -c '
import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value[int(part)] if isinstance(value, list) else value[part]
print(value)' "$1"
}

# api METHOD PATH TOKEN [BODY]: a fixture request that must succeed; prints the response body.
api() {
  local method=$1 path=$2 token=$3 body=${4:-}
  local args=(-sS -X "$method" -w '\n%{http_code}' -H 'content-type: application/json')
  [ -n "$token" ] && args+=(-H "authorization: Bearer $token")
  [ -n "$body" ] && args+=(--data-binary "$body")
  local answer status
  answer=$(curl "${args[@]}" "$API$path")
  status=${answer##*$'\n'}
  answer=${answer%$'\n'*}
  case "$status" in
    2??) printf '%s\n' "$answer" ;;
    *) echo "fixture $method $path answered $status: $answer" >&2; return 1 ;;
  esac
}

# login OPENID [INVITE]: a mock wx.login code, then a login; prints the access token.
login() {
  local openid=$1 invite=${2:-} code body
  code=$(curl -fsS -X POST "$MOCK/__mock/login-codes" -H 'content-type: application/json' \
    -d "{\"openid\": \"$openid\"}" | json code)
  if [ -n "$invite" ]; then
    body="{\"code\": \"$code\", \"invite\": \"$invite\", \"display_name\": \"$openid\"}"
  else
    body="{\"code\": \"$code\"}"
  fi
  api POST /api/v1/auth/wechat/login "" "$body" | json access_token
}

echo "== fixtures"
ADMIN=$(login o-fuzz-admin "$INVITE")
ADMIN_ID=$(api GET /api/v1/me "$ADMIN" | json principal.id)
SALES=$(login o-fuzz-sales "$SALES_INVITE")
SALES_ID=$(api GET /api/v1/me "$SALES" | json principal.id)
VISITOR=$(login o-fuzz-visitor)
[ "$(api GET /api/v1/me "$VISITOR" | json principal.kind)" = visitor ] ||
  { echo "the visitor login did not yield a visitor session" >&2; exit 1; }
# Sessions that only POST /api/v1/auth/logout uses (see the logout runs below).
ADMIN_LOGOUT=$(login o-fuzz-admin)
VISITOR_LOGOUT=$(login o-fuzz-visitor)

GROUP_ID=$(api POST /api/v1/tag-groups "$ADMIN" \
  '{"name": "客户价值", "dimension": "value", "exclusive": true, "description": "fixture"}' | json id)
TAG_ID=$(api POST /api/v1/tags "$ADMIN" \
  "{\"group_id\": $GROUP_ID, \"name\": \"高价值客户\", \"color\": \"#F5222D\", \"definition\": \"fixture\"}" | json id)
api POST /api/v1/custom-fields "$ADMIN" \
  '{"key": "budget", "label": "预算", "field_type": "number", "required": false}' >/dev/null
api POST /api/v1/custom-fields "$ADMIN" \
  '{"key": "company_size", "label": "公司规模", "field_type": "single_select", "options": ["1-50", "51-500", "500+"]}' >/dev/null
CUSTOMER_ID=$(api POST /api/v1/customers "$ADMIN" \
  "{\"name\": \"张伟\", \"phone\": \"13800138000\", \"company\": \"星河科技\", \"owner_id\": $ADMIN_ID,
    \"custom_fields\": {\"budget\": 50000, \"company_size\": \"51-500\"}, \"tag_ids\": [$TAG_ID]}" | json id)
api POST /api/v1/customers "$SALES" '{"name": "李娜", "phone": "13900139000"}' >/dev/null
CHANNEL=$(api POST /api/v1/channels "$ADMIN" \
  "{\"name\": \"2026 上海车展展台\", \"scene\": \"expo2026\", \"privacy_policy_version\": \"2026-10\",
    \"owner_policy\": {\"type\": \"round_robin\", \"staff_ids\": [$ADMIN_ID, $SALES_ID]},
    \"default_tag_ids\": [$TAG_ID],
    \"form\": [{\"key\": \"phone\", \"required\": true}, {\"key\": \"company\"}, {\"key\": \"custom_fields.budget\"}]}")
SCENE=$(json qr_scene <<<"$CHANNEL")
# A visitor capture gives the admin a task and the customer a capture record.
api GET "/api/v1/capture/form?scene=$SCENE" "" >/dev/null
api POST /api/v1/capture "$VISITOR" \
  "{\"scene\": \"$SCENE\", \"name\": \"王芳\", \"phone\": \"13700137000\", \"company\": \"远景\",
    \"custom_fields\": {\"budget\": 20000}, \"consent\": {\"accepted\": true, \"policy_version\": \"2026-10\"}}" >/dev/null
echo "tenant $TENANT_ID: admin #$ADMIN_ID, sales #$SALES_ID, tag group #$GROUP_ID, tag #$TAG_ID," \
  "customer #$CUSTOMER_ID, channel scene $SCENE"

# Real ids and the real scene, mixed into generated values (a fuzz dictionary), so that
# operations on {id}, tag_id and scene also reach existing rows instead of only 404s: the
# fixtures above are customers 1-3, staff 1-2, and id 1 of everything else.
cat >"$OUT/schemathesis.toml" <<TOML
[dictionaries.ids]
values = [1, 2, 3]

[dictionaries.tag-ids]
values = [$TAG_ID]

[dictionaries.group-ids]
values = [$GROUP_ID]

[dictionaries.scenes]
values = ["$SCENE"]

[parameters]
"path.id" = { dictionary = "ids", probability = 0.4 }
"path.tag_id" = { dictionary = "tag-ids", probability = 0.4 }
"query.scene" = { dictionary = "scenes", probability = 0.4 }
"body.scene" = { dictionary = "scenes", probability = 0.4 }
"body.tag_id" = { dictionary = "tag-ids", probability = 0.4 }
"body.group_id" = { dictionary = "group-ids", probability = 0.4 }
TOML

FAILED=()
# fuzz NAME TOKEN SEED [extra schemathesis options]: one schemathesis run; its output goes to the
# terminal and to $OUT/NAME.log, its JUnit and NDJSON reports to $OUT/NAME/.
fuzz() {
  local name=$1 token=$2 seed=$3
  shift 3
  echo
  echo "== schemathesis $name (seed $seed)"
  local cmd=("$ST" --config-file "$OUT/schemathesis.toml" run "$API/api/v1/openapi.json" --url "$API"
    --header "Authorization: Bearer $token"
    --checks "$CHECKS"
    --seed "$seed"
    --workers "$WORKERS"
    --request-timeout 10
    # Without it an operation stops at its first failure, and a cheap one (an undocumented 400
    # for a body that is not JSON) hides whatever else the operation does wrong.
    --continue-on-failure
    # No example database: a CI run is fresh anyway, and it would make seeded runs depend on
    # what an earlier run on this machine found.
    --generation-database none
    --report "junit,ndjson" --report-dir "$OUT/$name"
    --no-color
    "$@")
  local rc=0
  "${cmd[@]}" 2>&1 | tee "$OUT/$name.log" || rc=$?
  if [ "$rc" -ne 0 ]; then FAILED+=("$name (exit $rc)"); fi
}

echo
echo "fixed seed: $SEED; random seed: $RANDOM_SEED (reproduce with SCHEMATHESIS_RANDOM_SEED=$RANDOM_SEED)"
START=$SECONDS
# POST /api/v1/auth/logout ends the session of the token it is called with, and every later
# request of the run would then be a 401; so the main runs leave it out and the logout runs
# below call it with a session of its own.
# --max-time is the budget of a run: the examples and coverage phases run once, then fuzzing
# and stateful testing repeat (each time with at most --max-examples cases per operation)
# until it is spent; so four runs take 4 x SCHEMATHESIS_MAX_TIME on any machine. The first
# pass of a seeded run is the same every time; how many passes follow depends on speed.
BOUNDS=(--max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --exclude-operation-id logout)
fuzz "admin-seed-$SEED" "$ADMIN" "$SEED" "${BOUNDS[@]}"
fuzz "admin-seed-$RANDOM_SEED" "$ADMIN" "$RANDOM_SEED" "${BOUNDS[@]}"
fuzz "visitor-seed-$SEED" "$VISITOR" "$SEED" "${BOUNDS[@]}"
fuzz "visitor-seed-$RANDOM_SEED" "$VISITOR" "$RANDOM_SEED" "${BOUNDS[@]}"
LOGOUT=(--max-examples "$MAX_EXAMPLES" --include-operation-id logout)
fuzz admin-logout "$ADMIN_LOGOUT" "$SEED" "${LOGOUT[@]}"
fuzz visitor-logout "$VISITOR_LOGOUT" "$SEED" "${LOGOUT[@]}"
echo
echo "schemathesis on $BACKEND took $((SECONDS - START)) s"
echo
echo "== distinct failures on $BACKEND (all runs)"
python3 "$ROOT/tests/schemathesis/summarize.py" "$OUT"/*/*.ndjson | tee "$OUT/summary.txt"

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "the server died during the run" >&2
  FAILED+=("server exited")
fi

# Whatever the fuzzing left, every customer's tags are what the rules say: the operator's
# re-check, next to the running server, reports what it corrected. A transition falling due
# in the seconds the re-check runs may be applied by either, so a correction is reported,
# not failed on; a re-check that does not finish is a failure.
echo "== rules recheck on $BACKEND"
if RECHECK=$(timeout 300 "$BIN" rules recheck --tenant "$TENANT_ID" 2>>"$SERVER_LOG"); then
  echo "$RECHECK" | grep -v '^corrected:' || true
  grep -q '^customers_checked: ' <<<"$RECHECK" || FAILED+=("rules recheck printed no result")
else
  FAILED+=("rules recheck failed")
fi
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED on $BACKEND: ${FAILED[*]}" >&2
  exit 1
fi
echo "schemathesis on $BACKEND: no failures"
