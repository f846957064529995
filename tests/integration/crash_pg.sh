#!/usr/bin/env bash
# requires: pg
# The crash test (crash.sh: kill -9 at seeded random moments, restart
# each time; every terminal event delivered, repeats with the same id,
# batch.done after its members) with the state on PostgreSQL.
EW_STATE=pg
. "$top_srcdir/tests/integration/crash.sh"
