#!/usr/bin/env bash
# A tour of kcm with the real aws CLI: every step is an ordinary `aws kms` command.
#
#   kcm serve --data-dir kcm-data &            # in another terminal
#   scripts/tour-aws-cli.sh                    # uses http://127.0.0.1:8990 and kcm-data/credentials
#
# Settings (environment):
#   KCM_ENDPOINT                 server URL               (default http://127.0.0.1:8990)
#   AWS_SHARED_CREDENTIALS_FILE  credentials written by kcm serve (default kcm-data/credentials)
#   AWS_PROFILE                  profile to use           (default "default")
#   AWS                          the aws CLI to run       (default .venv/bin/aws, else aws on PATH)
#
# Exits non-zero on the first failing step or mismatch.
set -euo pipefail

cd "$(dirname "$0")/.."
ENDPOINT="${KCM_ENDPOINT:-http://127.0.0.1:8990}"
export AWS_SHARED_CREDENTIALS_FILE="${AWS_SHARED_CREDENTIALS_FILE:-kcm-data/credentials}"
export AWS_PROFILE="${AWS_PROFILE:-default}"
export AWS_CONFIG_FILE=/dev/null
export AWS_PAGER=""
export AWS_EC2_METADATA_DISABLED=true
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE || true
if [[ -z "${AWS:-}" ]]; then
  if [[ -x .venv/bin/aws ]]; then AWS=.venv/bin/aws; else AWS=aws; fi
fi
[[ -r "$AWS_SHARED_CREDENTIALS_FILE" ]] || { echo "cannot read $AWS_SHARED_CREDENTIALS_FILE" >&2; exit 2; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

kms() { "$AWS" --endpoint-url "$ENDPOINT" --region us-east-1 kms "$@"; }
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

step "create a key"
KEY_ID="$(kms create-key --description "tour key" --query KeyMetadata.KeyId --output text)"
echo "key id: $KEY_ID"
[[ "$KEY_ID" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] || fail "unexpected key id '$KEY_ID'"
STATE="$(kms describe-key --key-id "$KEY_ID" --query KeyMetadata.KeyState --output text)"
[[ "$STATE" == "Enabled" ]] || fail "new key is $STATE"

step "give it an alias"
ALIAS="alias/tour-$(date +%s)-$$"
kms create-alias --alias-name "$ALIAS" --target-key-id "$KEY_ID"
[[ "$(kms describe-key --key-id "$ALIAS" --query KeyMetadata.KeyId --output text)" == "$KEY_ID" ]] \
  || fail "alias does not resolve to the key"

step "list keys"
# Read the whole listing first: `grep -q` stops at the first match, and under
# pipefail the writer's SIGPIPE would fail the pipeline when the listing is long.
LISTED="$(kms list-keys --output text --query 'Keys[].KeyId' | tr '\t' '\n')"
grep -qx "$KEY_ID" <<<"$LISTED" || fail "key not listed"
echo "listed"

step "encrypt a file (fileb://) under the alias"
head -c 3000 /dev/urandom > "$WORK/secret.bin"
kms encrypt --key-id "$ALIAS" --plaintext "fileb://$WORK/secret.bin" \
  --encryption-context purpose=tour --query CiphertextBlob --output text | base64 -d > "$WORK/secret.enc"
echo "ciphertext: $(wc -c < "$WORK/secret.enc") bytes"
cmp -s "$WORK/secret.bin" "$WORK/secret.enc" && fail "ciphertext equals plaintext"

step "decrypt it and compare"
kms decrypt --ciphertext-blob "fileb://$WORK/secret.enc" --encryption-context purpose=tour \
  --query Plaintext --output text | base64 -d > "$WORK/secret.out"
cmp "$WORK/secret.bin" "$WORK/secret.out" || fail "decrypted file differs"
echo "round trip ok"

step "decrypting with the wrong encryption context is refused"
if kms decrypt --ciphertext-blob "fileb://$WORK/secret.enc" --encryption-context purpose=other \
     --query Plaintext --output text > /dev/null 2> "$WORK/err"; then
  fail "decrypt with the wrong context succeeded"
fi
grep -q InvalidCiphertextException "$WORK/err" || fail "unexpected error: $(cat "$WORK/err")"
echo "refused: InvalidCiphertextException"

step "generate a data key"
kms generate-data-key --key-id "$KEY_ID" --key-spec AES_256 --output json > "$WORK/dk.json"
python3 - "$WORK/dk.json" <<'PY'
import base64, json, sys
d = json.load(open(sys.argv[1]))
assert len(base64.b64decode(d["Plaintext"])) == 32, "data key is not 32 bytes"
open(sys.argv[1] + ".ct", "wb").write(base64.b64decode(d["CiphertextBlob"]))
open(sys.argv[1] + ".pt", "wb").write(base64.b64decode(d["Plaintext"]))
PY
kms decrypt --ciphertext-blob "fileb://$WORK/dk.json.ct" --query Plaintext --output text | base64 -d > "$WORK/dk.out"
cmp "$WORK/dk.json.pt" "$WORK/dk.out" || fail "data key does not decrypt to its plaintext"
echo "data key ok"

step "enable automatic rotation (every 180 days)"
kms enable-key-rotation --key-id "$KEY_ID" --rotation-period-in-days 180
[[ "$(kms get-key-rotation-status --key-id "$KEY_ID" --query KeyRotationEnabled --output text)" == "True" ]] \
  || fail "rotation not enabled"
[[ "$(kms get-key-rotation-status --key-id "$KEY_ID" --query RotationPeriodInDays --output text)" == "180" ]] \
  || fail "rotation period not 180"

step "rotate now"
kms rotate-key-on-demand --key-id "$KEY_ID" > /dev/null
N="$(kms list-key-rotations --key-id "$KEY_ID" --query 'length(Rotations)' --output text)"
[[ "$N" == "1" ]] || fail "expected 1 rotation, got $N"
kms decrypt --ciphertext-blob "fileb://$WORK/secret.enc" --encryption-context purpose=tour \
  --query Plaintext --output text | base64 -d | cmp - "$WORK/secret.bin" || fail "old ciphertext no longer decrypts"
echo "rotated; old ciphertext still decrypts"

step "schedule deletion (7 days)"
kms schedule-key-deletion --key-id "$KEY_ID" --pending-window-in-days 7 > /dev/null
STATE="$(kms describe-key --key-id "$KEY_ID" --query KeyMetadata.KeyState --output text)"
[[ "$STATE" == "PendingDeletion" ]] || fail "state is $STATE, expected PendingDeletion"

step "cancel the deletion and re-enable"
kms cancel-key-deletion --key-id "$KEY_ID" > /dev/null
STATE="$(kms describe-key --key-id "$KEY_ID" --query KeyMetadata.KeyState --output text)"
[[ "$STATE" == "Disabled" ]] || fail "state is $STATE, expected Disabled"
kms enable-key --key-id "$KEY_ID"
STATE="$(kms describe-key --key-id "$KEY_ID" --query KeyMetadata.KeyState --output text)"
[[ "$STATE" == "Enabled" ]] || fail "state is $STATE, expected Enabled"

step "sign a release digest with an ECC key; verify offline with openssl"
SIGN_KEY="$(kms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY --query KeyMetadata.KeyId --output text)"
head -c 100000 /dev/urandom > "$WORK/release.tar"
openssl dgst -sha256 -binary "$WORK/release.tar" > "$WORK/release.sha256"
kms sign --key-id "$SIGN_KEY" --message "fileb://$WORK/release.sha256" --message-type DIGEST \
  --signing-algorithm ECDSA_SHA_256 --query Signature --output text | base64 -d > "$WORK/release.sig"
kms get-public-key --key-id "$SIGN_KEY" --query PublicKey --output text | base64 -d > "$WORK/pub.der"
openssl pkey -pubin -inform DER -in "$WORK/pub.der" -out "$WORK/pub.pem"
openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/release.sig" "$WORK/release.tar" \
  || fail "openssl does not verify kcm's signature"
printf 'x' >> "$WORK/release.tar"
if openssl dgst -sha256 -verify "$WORK/pub.pem" -signature "$WORK/release.sig" "$WORK/release.tar" >/dev/null 2>&1; then
  fail "a changed release still verifies"
fi
echo "signature verified offline; a changed file fails"

printf '\ntour complete\n'
