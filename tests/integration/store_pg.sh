#!/usr/bin/env bash
# requires: pg
# The store's unit test (tests/unit/test_store) on a real PostgreSQL server as
# well as on SQLite: the same cases through store.h, each on an empty schema.
. "$top_srcdir/tests/integration/lib/lib.sh"
. "$top_srcdir/tests/integration/lib/pg.sh"
pg_start
EW_TEST_PG_URL="$PG_URL" "$top_builddir/tests/unit/test_store" >"$T/test_store.log" 2>&1 || { cat "$T/test_store.log"; fail "test_store on PostgreSQL"; }
grep -q 'the same cases on PostgreSQL' "$T/test_store.log" || fail "the PostgreSQL round did not run"
ok "the store's cases pass on SQLite and on PostgreSQL ($(grep -c '^\[       OK \]' "$T/test_store.log") cases)"
