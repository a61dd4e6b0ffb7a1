#!/usr/bin/env bash
# Builds `backup` and walks the main job on the embedded default, a local
# repository: init, create, snapshots, verify, diff, restore.
# Everything happens under a fresh temporary directory (printed at the end).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

echo "==> cargo build --release -p backup-cli"
cargo build --release -q -p backup-cli
BACKUP="$PWD/target/release/backup"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/backup-quickstart.XXXXXX")"
export BACKUP_REPOSITORY="$WORK/repo"
PASSWORD_FILE="$WORK/password"
umask 077
head -c 24 /dev/urandom | base64 > "$PASSWORD_FILE"
umask 022
export BACKUP_PASSWORD_FILE="$PASSWORD_FILE"

run() { echo; echo "\$ backup $*"; "$BACKUP" "$@"; }

# A small application: a release directory and its config.
APP="$WORK/srv/dms/releases/current"
CONF="$WORK/etc/dms"
mkdir -p "$APP/api/dist" "$APP/web/assets" "$CONF"
for i in $(seq 1 200); do echo "export const handler$i = () => 'dealer $i';" ; done > "$APP/api/dist/main.js"
head -c 2000000 /dev/urandom > "$APP/web/assets/bundle.bin"
echo '<html><body>DMS</body></html>' > "$APP/web/index.html"
echo 'DATABASE_URL=postgres://dms@localhost/dms' > "$CONF/dms.env"
chmod 600 "$CONF/dms.env"

run init
run create --files "$APP" --files "$CONF" --tag pre-deploy --label "v1.0 go-live"
echo "// v1.1" >> "$APP/api/dist/main.js"
run create --files "$APP" --files "$CONF" --tag post-deploy
run snapshots
run verify --read-data
FIRST="$("$BACKUP" snapshots --json --tag pre-deploy | sed -n 's/.*"short_id": "\([0-9a-f]*\)".*/\1/p' | head -n1)"
run diff "$FIRST" latest
run diff "$FIRST" --live
run restore "$FIRST" --target "$WORK/restore"
echo
echo "restored files are under $WORK/restore$APP"
diff -r "$WORK/restore$CONF" "$CONF" && echo "config restored identically"
echo
echo "quickstart done; everything is in $WORK (repository: $BACKUP_REPOSITORY)"
