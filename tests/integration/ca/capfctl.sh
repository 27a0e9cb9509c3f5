#!/bin/bash
# capfctl: every command and its errors with exit codes, JSON checked with jq,
# the store checked independently with the sqlite3 command, the report read
# back by import. Authentication strings never appear in this test's output.
# shellcheck source=tests/lib/testlib.sh
. "$PT_SOURCE_ROOT/tests/lib/testlib.sh"
CAPFCTL=$PT_BUILD_ROOT/ca/capfctl
command -v sqlite3 >/dev/null || skip_all "the sqlite3 command is not installed (apt-get install sqlite3)"
command -v jq >/dev/null || skip_all "jq is not installed"

DB=$PT_TMP/capf.db
export CAPFCTL_DB=sqlite:$DB
q() { sqlite3 "$DB" "$1"; }

# --- help and usage ----------------------------------------------------------
run "$CAPFCTL" --help
is "$RC" 0 "--help exits 0"
like "$OUT" "import FILE" "--help lists the commands"
for c in add set show delete unlock certs find report import; do
    run "$CAPFCTL" "$c" --help
    is "$RC" 0 "$c --help exits 0"
    like "$OUT" "Usage: capfctl $c" "$c --help shows its usage"
done
run "$CAPFCTL"
is "$RC" 2 "no command is a usage error"
run "$CAPFCTL" frobnicate
is "$RC" 2 "an unknown command is a usage error"
run "$CAPFCTL" show SEP001122334455 --frob
is "$RC" 2 "an unknown option is a usage error"
run "$CAPFCTL" show
is "$RC" 2 "show without DEVICE is a usage error"

# --- a store that is not there, or not one -------------------------------------
run "$CAPFCTL" show SEP001122334455
is "$RC" 1 "show before any store exists fails"
like "$ERR" "there is no CAPF store at $DB" "and says where it looked"
[ ! -e "$DB" ]
ok $? "a read-only command does not create the store"
run "$CAPFCTL" --db "postgresql://capf:hunter2@db/capf" find
is "$RC" 1 "a postgresql URL fails"
like "$ERR" "no PostgreSQL backend" "with a clear reason"
unlike "$ERR" "hunter2" "and without repeating the URL's password"

# --- add ---------------------------------------------------------------------------
run "$CAPFCTL" add sep001122334455 --description 'Lobby, "east"' --operation install \
    --generate-string
is "$RC" 0 "add with a generated string"
is "$(printf '%s\n' "$OUT" | head -n 1)" "device SEP001122334455 added" \
    "the name is stored in upper case"
S1=$(printf '%s\n' "$OUT" | sed -n 's/^authentication string for SEP001122334455: //p')
[[ $S1 =~ ^[0-9]{8}$ ]]
ok $? "the generated string is printed once, 8 digits by default"
is "$(stat -c %a "$DB")" 600 "the store file is created with mode 0600"
[ "$(q "SELECT auth_string FROM devices WHERE name = 'SEP001122334455'")" = "$S1" ]
ok $? "the store holds the printed string (read with sqlite3)"
is "$(q "SELECT operation || ' ' || auth_mode || ' ' || status_op || ' ' || status_state \
    FROM devices")" "install string install pending" "operation install, string mode, pending"
is "$(q "PRAGMA journal_mode")" "wal" "the store uses a write-ahead log"

declare -A seen=()
distinct=0
for len in 4 5 6 7 8 9 10 10 10 10; do
    run "$CAPFCTL" add "CSFGEN$len$distinct" --operation install --generate-string \
        --string-length "$len"
    s=$(printf '%s\n' "$OUT" | sed -n 's/^authentication string for [^:]*: //p')
    if [[ $RC -eq 0 && $s =~ ^[0-9]+$ && ${#s} -eq $len && -z ${seen[$s]:-} ]]; then
        distinct=$((distinct + 1))
        seen[$s]=1
    fi
done
is "$distinct" 10 "generated strings have the asked length (4 to 10 digits) and all differ"
run "$CAPFCTL" add CSFGENX --generate-string --string-length 11
is "$RC" 2 "--string-length 11 is refused"

run "$CAPFCTL" add SEP001122334455
is "$RC" 1 "adding a device twice fails"
like "$ERR" "exists already; change it with capfctl set" "and says what to do"
run "$CAPFCTL" add SEP00112233445
is "$RC" 2 "a SEP name without 12 hex digits is a usage error"
like "$ERR" "12 hex digits" "and the rule is explained"
run "$CAPFCTL" add FOO001122334455
is "$RC" 2 "an unknown prefix is a usage error"
run "$CAPFCTL" add SEP0011223344AA --auth string
is "$RC" 2 "--auth string without a string is a usage error"
like "$ERR" "needs --auth-string" "and names the options that give one"
run "$CAPFCTL" add SEP0011223344AA --auth lsc --auth-string 1234
is "$RC" 2 "a string with --auth lsc is a usage error"
run "$CAPFCTL" add SEP0011223344AA --auth-string 12a45
is "$RC" 2 "a string that is not 4-10 digits is a usage error"
unlike "$ERR" "12a45" "and the bad string is not repeated"
run "$CAPFCTL" add SEP0011223344AA --auth-string 1234 --generate-string
is "$RC" 2 "a given and a generated string together are a usage error"
run "$CAPFCTL" add SEP0011223344AA --key rsa:512
is "$RC" 2 "an unknown key specification is a usage error"
run "$CAPFCTL" add SEP0011223344AA --deadline tomorrow
is "$RC" 2 "a deadline that is not ISO 8601 is a usage error"
run "$CAPFCTL" add SEP0011223344AA --description "$(printf 'tab\there')"
is "$RC" 2 "a description with control characters is a usage error"

exec 3<<<"24681357"
run "$CAPFCTL" add SEP0011223344AA --auth-string-fd 3 --key ec-preferred:P-256/rsa:2048 \
    --deadline 2030-06-01T12:00:00Z --operation troubleshoot
exec 3<&-
is "$RC" 0 "add with the string from a file descriptor, a key and a deadline"
[ "$(q "SELECT auth_string FROM devices WHERE name = 'SEP0011223344AA'")" = 24681357 ]
ok $? "the string read from the descriptor is stored"
is "$(q "SELECT key_spec || ' ' || deadline FROM devices WHERE name = 'SEP0011223344AA'")" \
    "ec-preferred:P-256/rsa:2048 $(date -u -d 2030-06-01T12:00:00Z +%s)" \
    "key specification and deadline are stored"
run "$CAPFCTL" add SEP0011223344BB --auth lsc --deadline 2001-01-01
is "$RC" 0 "a deadline in the past is accepted"
like "$ERR" "in the past" "with a warning"

# --- show --------------------------------------------------------------------------
run "$CAPFCTL" show SEP001122334455 --json
is "$RC" 0 "show --json"
J=$OUT
is "$(jq -r '[.name, .description, .operation, .auth_mode, .status.text] | join("|")' <<<"$J")" \
    'SEP001122334455|Lobby, "east"|install|string|install pending' "show --json: settings and status"
is "$(jq -r '.auth_string_set, .locked, .auth_failures, .key, .deadline, .lsc' <<<"$J" | tr '\n' ' ')" \
    "true false 0 default null null " "show --json: string set (not shown), not locked, no LSC"
is "$(jq -r '.history[0] | [.event, .actor] | join(" ")' <<<"$J")" "added capfctl" \
    "show --json: the history names who added it"
[[ $J != *"$S1"* ]]
ok $? "show does not print the authentication string"
run "$CAPFCTL" show sep001122334455
is "$RC" 0 "show takes the name in any case"
like "$OUT" "status: +install pending" "show prints the status"
run "$CAPFCTL" show SEP999999999999
is "$RC" 1 "show of an unknown device fails"
like "$ERR" "device SEP999999999999 is not known; add it with capfctl add" "with what to do"

# --- set -----------------------------------------------------------------------------
run "$CAPFCTL" set SEP0011223344BB --operation delete
is "$RC" 0 "set changes the operation"
is "$(q "SELECT operation || ' ' || status_op || ' ' || status_state FROM devices \
    WHERE name = 'SEP0011223344BB'")" "delete delete pending" "changing the operation makes it pending"
run "$CAPFCTL" set SEP0011223344BB --description "Desk 12"
is "$(q "SELECT description || ' ' || operation FROM devices WHERE name = 'SEP0011223344BB'")" \
    "Desk 12 delete" "set changes only what it is given"
run "$CAPFCTL" set SEP0011223344BB --no-deadline --key rsa:4096
is "$(q "SELECT coalesce(deadline, 'none') || ' ' || key_spec FROM devices \
    WHERE name = 'SEP0011223344BB'")" "none rsa:4096" "--no-deadline clears the deadline"
run "$CAPFCTL" set SEP0011223344BB --auth string
is "$RC" 2 "string mode without a string is refused"
like "$ERR" "needs an authentication string" "with the reason"
run "$CAPFCTL" set SEP0011223344BB
is "$RC" 2 "set without options is a usage error"
run "$CAPFCTL" set SEP999999999999 --operation install
is "$RC" 1 "set of an unknown device fails"
like "$ERR" "is not known; add it with capfctl add" "with what to do"
run "$CAPFCTL" set SEP0011223344AA --auth lsc
is "$(q "SELECT auth_mode || ' ' || coalesce(auth_string, 'none') FROM devices \
    WHERE name = 'SEP0011223344AA'")" "lsc none" "leaving string mode forgets the string"

# --- unlock (the lock is set by capfd; here directly in the store) ------------------
q "UPDATE devices SET locked = 1, auth_failures = 5 WHERE name = 'SEP001122334455'"
run "$CAPFCTL" show SEP001122334455
like "$OUT" "LOCKED after 5 wrong strings" "show tells that a device is locked"
run "$CAPFCTL" unlock SEP001122334455
is "$RC" 0 "unlock"
is "$(q "SELECT locked || ' ' || auth_failures FROM devices WHERE name = 'SEP001122334455'")" \
    "0 0" "unlock clears the lock and the count"
run "$CAPFCTL" unlock SEP999999999999
is "$RC" 1 "unlock of an unknown device fails"

# --- certs (recorded by capfd; here written directly into the store) -------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PT_TMP/k.pem" \
    -subj /CN=SEP0011223344BB -days 30 -set_serial 0x0AB1 -out "$PT_TMP/lsc.pem" 2>/dev/null
PEM=$(cat "$PT_TMP/lsc.pem")
NA=$(date -u -d "$(openssl x509 -in "$PT_TMP/lsc.pem" -noout -enddate | cut -d= -f2)" +%s)
q "INSERT INTO certificates (id, device, serial, subject, issuer, key_type, not_before, not_after,
    pem, issued_at) VALUES (7, 'SEP0011223344BB', '0AB1', 'CN=SEP0011223344BB',
    'CN=SEP0011223344BB', 'EC P-256', $((NA - 30 * 86400)), $NA, '$PEM', $((NA - 30 * 86400)));
    UPDATE devices SET lsc_cert_id = 7 WHERE name = 'SEP0011223344BB';"
run "$CAPFCTL" certs SEP0011223344BB --json
is "$RC" 0 "certs --json"
is "$(jq -r '.[0] | [.kind, .serial, .key_type, .current] | join(" ")' <<<"$OUT")" \
    "issued 0AB1 EC P-256 true" "certs lists the issued LSC as current"
jq -r '.[0].pem' <<<"$OUT" >"$PT_TMP/back.pem"
cmp -s "$PT_TMP/back.pem" "$PT_TMP/lsc.pem"
ok $? "certs --json gives back the PEM, byte for byte"
is "$(jq -r '.[0].not_after' <<<"$OUT")" "$(date -u -d "@$NA" +%Y-%m-%dT%H:%M:%SZ)" \
    "and its expiry"
run "$CAPFCTL" certs SEP0011223344BB --pem
like "$OUT" "BEGIN CERTIFICATE" "certs --pem prints the certificate"
run "$CAPFCTL" certs SEP001122334455
is "$OUT" "no certificate recorded for SEP001122334455" "certs of a device without any"
run "$CAPFCTL" certs SEP999999999999
is "$RC" 1 "certs of an unknown device fails"

# --- find ----------------------------------------------------------------------------------
q "UPDATE devices SET status_state = 'failed', status_reason = 'expired'
    WHERE name = 'SEP0011223344AA'"
run "$CAPFCTL" find --json
is "$(jq -r 'length' <<<"$OUT")" 13 "find without options lists every device"
is "$(jq -r '.[0].name' <<<"$OUT")" "CSFGEN106" "in name order"
run "$CAPFCTL" find --lsc-status failed --json
is "$(jq -r '[.[].name] | join(",")' <<<"$OUT")" "SEP0011223344AA" "find --lsc-status failed"
is "$(jq -r '.[0].status.text' <<<"$OUT")" "troubleshoot failed: expired" "with the reason"
run "$CAPFCTL" find --lsc-status "troubleshoot failed" --json
is "$(jq -r 'length' <<<"$OUT")" 1 "find --lsc-status 'OP STATE'"
run "$CAPFCTL" find --lsc-status install-failed --json
is "$(jq -r 'length' <<<"$OUT")" 0 "find --lsc-status OP-STATE"
run "$CAPFCTL" find --operation delete --json
is "$(jq -r '[.[].name] | join(",")' <<<"$OUT")" "SEP0011223344BB" "find --operation"
is "$(jq -r '.[0].lsc.serial' <<<"$OUT")" "0AB1" "find shows the LSC"
exec 3<<<"$S1"
run "$CAPFCTL" find --auth-string-fd 3 --json
exec 3<&-
is "$(jq -r '[.[].name] | join(",")' <<<"$OUT")" "SEP001122334455" "find by authentication string"
run "$CAPFCTL" find --lsc-status bogus
is "$RC" 2 "an unknown status is a usage error"
run "$CAPFCTL" find --operation delete
like "$OUT" "^DEVICE +AUTH +OPERATION +STATUS" "find prints a table with a header"
like "$OUT" "SEP0011223344BB +lsc +delete +delete pending" "and a line per device"

# --- report ----------------------------------------------------------------------------------
run "$CAPFCTL" report -o "$PT_TMP/report.csv"
is "$RC" 0 "report -o FILE"
is "$(stat -c %a "$PT_TMP/report.csv")" 600 "the report file is private (it holds strings)"
is "$(head -c 3 "$PT_TMP/report.csv" | od -An -tx1 | tr -d ' ')" "efbbbf" \
    "the report starts with a UTF-8 byte-order mark"
is "$(head -n 1 "$PT_TMP/report.csv" | tail -c +4)" \
    "$(printf 'device,description,auth mode,authentication string,operation,deadline,LSC status,LSC serial,LSC expiry,last change\r')" \
    "the header names the columns, line ends are CRLF"
is "$(grep -c $'\r$' "$PT_TMP/report.csv")" 14 "a header and 13 devices, each line CRLF"
grep -q "^SEP001122334455,\"Lobby, \"\"east\"\"\",string,$S1,install,,install pending,,," \
    "$PT_TMP/report.csv"
ok $? "fields with commas and quotes are quoted (RFC 4180)"
grep -q "^SEP0011223344BB,Desk 12,lsc,,delete,,delete pending,0AB1,$(date -u -d "@$NA" +%Y-%m-%dT%H:%M:%SZ)," \
    "$PT_TMP/report.csv"
ok $? "the LSC serial and expiry are in the report"
"$CAPFCTL" report >"$PT_TMP/stdout.csv"
cmp -s "$PT_TMP/stdout.csv" "$PT_TMP/report.csv"
ok $? "report without -o writes the same to standard output"

# --- import: round trip, all or nothing ------------------------------------------------------
DUMP=$PT_TMP/dump.sql
sqlite3 "$DB" .dump >"$DUMP.before"
run "$CAPFCTL" import "$PT_TMP/report.csv"
is "$RC" 0 "importing an unchanged report succeeds"
sqlite3 "$DB" .dump >"$DUMP.after"
cmp -s "$DUMP.before" "$DUMP.after"
ok $? "and changes nothing in the store (compared with sqlite3 .dump)"

NEWDB=$PT_TMP/new.db
run "$CAPFCTL" --db "sqlite:$NEWDB" import "$PT_TMP/report.csv"
is "$RC" 0 "the report imports into a new store"
SETTINGS='SELECT name, description, auth_mode, coalesce(auth_string, ""), operation,
    coalesce(deadline, "") FROM devices ORDER BY name'
is "$(sqlite3 "$NEWDB" "$SETTINGS" | md5sum)" "$(q "$SETTINGS" | md5sum)" \
    "with every device's settings the same"

printf 'device,operation\nSEP00AA00AA00A1,install\nSEP00AA00AA00A2,instal\nSEP00AA00AA00A3,delete\n' \
    >"$PT_TMP/onebad.csv"
sqlite3 "$DB" .dump >"$DUMP.before"
run "$CAPFCTL" import "$PT_TMP/onebad.csv"
is "$RC" 1 "an import with one bad line among good ones fails"
like "$ERR" "onebad.csv:3: operation: unknown operation" "and names the line and the problem"
sqlite3 "$DB" .dump >"$DUMP.after"
cmp -s "$DUMP.before" "$DUMP.after"
ok $? "and changes nothing (compared with sqlite3 .dump)"

cat >"$PT_TMP/mixed.csv" <<'EOF'
device,description,auth mode,authentication string,operation,deadline
SEP00AA00AA00AA,good one,null,,install,
SEP00AA00AA00AB,bad mode,password,,install,
SEP00AA00AA00AC,good two,lsc,,troubleshoot,2031-01-01
SEP00AA00AA00AD,bad string,string,12x4,install,
SEP00AA00AA00AE,bad deadline,null,,install,soon
SEP0011223344BB,needs a string,string,,install,
SEP00AA00AA00AA,twice,null,,none,
EOF
sqlite3 "$DB" .dump >"$DUMP.before"
run "$CAPFCTL" import "$PT_TMP/mixed.csv"
is "$RC" 1 "an import with bad lines among good ones fails"
sqlite3 "$DB" .dump >"$DUMP.after"
cmp -s "$DUMP.before" "$DUMP.after"
ok $? "and changes nothing at all (compared with sqlite3 .dump)"
is "$(q "SELECT count(*) FROM devices WHERE name LIKE 'SEP00AA%'")" 0 "not even the good lines"
is "$(printf '%s\n' "$ERR" | grep -o 'mixed.csv:[0-9]*' | tr '\n' ' ')" \
    "mixed.csv:3 mixed.csv:5 mixed.csv:6 mixed.csv:7 mixed.csv:8 " \
    "every bad line is reported with its line number, in order"
like "$ERR" "nothing was imported: 5 errors" "and the total"
unlike "$ERR" "12x4" "a bad string is not repeated"

printf 'device,frobs\nSEP00AA00AA00AA,1\n' >"$PT_TMP/badhead.csv"
run "$CAPFCTL" import "$PT_TMP/badhead.csv"
is "$RC" 1 "an unknown column is refused"
like "$ERR" "badhead.csv:1: column 2 \('frobs'\) is not one capfctl knows" "with its name"
printf 'device,description\nSEP00AA00AA00AA,"open\n' >"$PT_TMP/quote.csv"
run "$CAPFCTL" import "$PT_TMP/quote.csv"
is "$RC" 1 "an unterminated quote is refused"
like "$ERR" "line 2: the quoted field that starts here is never closed" "with its line"

printf 'Device,Operation,key\r\nsep00aa00aa00aa,install,rsa:3072\r\nCSFGEN40,none,\r\n' \
    >"$PT_TMP/partial.csv"
run "$CAPFCTL" import "$PT_TMP/partial.csv"
is "$RC" 0 "an import with only some columns"
is "$(q "SELECT operation || ' ' || key_spec || ' ' || status_state FROM devices \
    WHERE name = 'SEP00AA00AA00AA'")" "install rsa:3072 pending" "adds a new device"
is "$(q "SELECT operation || ' ' || auth_mode || ' ' || length(auth_string) FROM devices \
    WHERE name = 'CSFGEN40'")" "none string 4" "and changes only the given columns of others"
run "$CAPFCTL" import "$PT_TMP/none.csv"
is "$RC" 1 "a missing file fails"

# --- descriptions a spreadsheet would take for formulas ----------------------------------------
FORMULA='=HYPERLINK("http://x.invalid","click")'
run "$CAPFCTL" add SEP00CC00CC00CC --description "$FORMULA"
is "$RC" 0 "a description that starts with '=' is stored"
run "$CAPFCTL" report -o "$PT_TMP/formula.csv"
like "$(grep SEP00CC00CC00CC "$PT_TMP/formula.csv")" "^SEP00CC00CC00CC,\"'=HYPERLINK" \
    "the report writes it behind an apostrophe, as text for spreadsheets"
run "$CAPFCTL" import "$PT_TMP/formula.csv"
is "$RC" 0 "and the report imports back"
is "$(q "SELECT description FROM devices WHERE name = 'SEP00CC00CC00CC'")" "$FORMULA" \
    "with the description unchanged"
run "$CAPFCTL" delete SEP00CC00CC00CC

# --- delete --------------------------------------------------------------------------------
run "$CAPFCTL" delete SEP0011223344BB
is "$RC" 0 "delete"
like "$OUT" "certificates and history are kept" "says what is kept"
is "$(q "SELECT count(*) FROM devices WHERE name = 'SEP0011223344BB'")" 0 "the device is gone"
run "$CAPFCTL" certs SEP0011223344BB --json
is "$(jq -r '.[0].serial' <<<"$OUT")" "0AB1" "its certificates are still listed"
is "$(q "SELECT event FROM history WHERE device = 'SEP0011223344BB' ORDER BY id DESC LIMIT 1")" \
    "deleted" "and its history records the deletion"
run "$CAPFCTL" delete SEP0011223344BB
is "$RC" 1 "deleting it again fails"

# --- a store from a newer phonetrust ---------------------------------------------------------
q "PRAGMA user_version = 99"
run "$CAPFCTL" find
is "$RC" 1 "a store with a newer schema is refused"
like "$ERR" "schema version 99, newer than this phonetrust knows" "with the reason"

# No authentication string ever reached this test's own output above.
done_testing
