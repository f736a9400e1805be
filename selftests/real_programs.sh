#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# real_programs.sh: programs nobody here wrote, run on libspanalloc through
# LD_PRELOAD, must give exactly what they give on the C library's malloc:
# python3 running a substantial script, sqlite3 running a few thousand
# statements, gcc compiling a real C file. Each run's SPANALLOC_STATS must
# name the backend expected (SPANALLOC_BACKEND, default kernel when
# /dev/spanalloc exists). TAP output.
#
# usage: real_programs.sh [LIBSPANALLOC_SO]
set -u
here=$(cd "$(dirname "$0")" && pwd)
lib=${1:-${SPANALLOC_SO:-$here/../build/userlib/libspanalloc.so}}
[ -f "$lib" ] || lib=$here/libspanalloc.so
if [ ! -f "$lib" ]; then
	echo "1..0 # SKIP no libspanalloc.so (pass its path or set SPANALLOC_SO)"
	exit 4
fi
want=${SPANALLOC_BACKEND:-}
if [ -z "$want" ]; then
	if [ -e /dev/spanalloc ]; then want=kernel; else want=mmap; fi
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
fails=0

echo "TAP version 13"
echo "1..3"
echo "# $lib, backend $want"

# check NAME CMD...: run CMD plain and preloaded; compare stdout, stats.
check() {
	local name=$1 plain=$work/$1.plain pre=$work/$1.pre stats=$work/$1.stats
	shift
	n=$((n + 1))
	if ! "$@" > "$plain" 2>&1; then
		echo "not ok $n $name # plain run failed"
		fails=$((fails + 1))
		return
	fi
	if ! env LD_PRELOAD="$lib" SPANALLOC_STATS=1 SPANALLOC_BACKEND="$want" \
		"$@" > "$pre" 2> "$stats"; then
		echo "not ok $n $name # run on spanalloc failed"
		sed 's/^/# /' "$stats" | head -20
		fails=$((fails + 1))
	elif ! cmp -s "$plain" "$pre"; then
		echo "not ok $n $name # output differs from glibc malloc's"
		diff "$plain" "$pre" | head -10 | sed 's/^/# /'
		fails=$((fails + 1))
	elif ! grep -q "backend $want" "$stats"; then
		echo "not ok $n $name # stats do not show backend $want"
		sed 's/^/# /' "$stats" | head -10
		fails=$((fails + 1))
	else
		# The busiest process of the run (gcc has a driver and cc1).
		echo "ok $n $name # $(grep -c '^spanalloc: backend ' "$stats") process(es); busiest: $(grep 'mapped' "$stats" |
			sort -k3 -n -r | head -n 1 | sed 's/^spanalloc: //')"
	fi
}

cat > "$work/script.py" <<'PY'
import collections, hashlib, heapq, json, random, re

random.seed(7)
words = ["".join(random.choice("abcdefghij") for _ in range(random.randint(3, 12)))
         for _ in range(20000)]
counts = collections.Counter(words)
tree = {w: {"len": len(w), "vowels": len(re.findall("[aei]", w)),
            "h": hashlib.sha256(w.encode()).hexdigest()[:12]} for w in counts}
blob = json.dumps(tree, sort_keys=True)
back = json.loads(blob)
top = heapq.nlargest(10, counts.items(), key=lambda kv: (kv[1], kv[0]))
lists = [sorted(random.sample(range(100000), 500)) for _ in range(200)]
merged = list(heapq.merge(*lists))
print(len(words), len(counts), len(blob), back == tree, top[:3])
print(sum(merged[::97]), hashlib.md5(blob.encode()).hexdigest())
PY
# PYTHONMALLOC=malloc: every Python object through malloc, not pymalloc arenas.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
check python3 env PYTHONMALLOC=malloc "$python" "$work/script.py"

{
	echo "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);"
	echo "BEGIN;"
	for i in $(seq 1 3000); do
		echo "INSERT INTO t(name, v) VALUES ('name$((i % 97))', $i.5);"
	done
	echo "COMMIT;"
	echo "CREATE INDEX t_name ON t(name);"
	echo "SELECT name, count(*), sum(v) FROM t GROUP BY name ORDER BY 2 DESC, 1 LIMIT 5;"
	echo "UPDATE t SET v = v * 2 WHERE id % 3 = 0;"
	echo "DELETE FROM t WHERE id % 5 = 0;"
	echo "SELECT count(*), round(avg(v), 3), max(length(name)) FROM t;"
	echo "SELECT group_concat(id) FROM (SELECT id FROM t ORDER BY v DESC LIMIT 20);"
} > "$work/statements.sql"
check sqlite3 sqlite3 :memory: ".read $work/statements.sql"

src=$here/../userlib/central.c
[ -f "$src" ] || src=$(ls /usr/include/stdio.h)
check gcc gcc -O2 -I"$here/../userlib" -I"$here/../uapi" -c "$src" -o /dev/stdout

[ "$fails" = 0 ]
