#!/usr/bin/env bash
# A Standard Webhooks verifier, written from the specification with openssl:
#   signed content = "{webhook-id}.{webhook-timestamp}.{body}"
#   signature      = base64(HMAC-SHA256(base64-decode(secret without "whsec_"), signed content))
#   the header holds space-separated "v1,<signature>" entries; one match is enough;
#   the timestamp must be within 5 minutes of now.
# Usage: verify-webhook.sh SECRET ID TIMESTAMP SIGNATURE-HEADER BODY-FILE [NOW]
# Exit 0 valid, 1 invalid.
set -euo pipefail
secret=${1#whsec_} id=$2 ts=$3 header=$4 body=$5 now=${6:-$(date +%s)}
[[ "$ts" =~ ^[0-9]+$ ]] || exit 1
(( now - ts <= 300 && ts - now <= 300 )) || exit 1
key=$(printf '%s' "$secret" | base64 -d | od -An -tx1 -v | tr -d ' \n')
want=$( { printf '%s.%s.' "$id" "$ts"; cat "$body"; } | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64 -w0)
for sig in $header; do
	[ "${sig%%,*}" = v1 ] && [ "${sig#v1,}" = "$want" ] && exit 0
done
exit 1
