#!/bin/bash
# usage: cpu_per_req.sh <port> <pids...> : runs wrk -t1 -c32 -d8s and prints req/s and server CPU us per request
port=$1; shift
ticks() { local t=0; for p in "$@"; do s=($(cut -d' ' -f14,15 /proc/$p/stat)); t=$((t + s[0] + s[1])); done; echo $t; }
before=$(ticks "$@")
out=$(wrk -t1 -c32 -d8s --latency http://127.0.0.1:$port/v1/top)
after=$(ticks "$@")
reqs=$(echo "$out" | grep -oP '^\s+\K\d+(?= requests in)')
rps=$(echo "$out" | grep -oP 'Requests/sec:\s+\K[\d.]+')
p99=$(echo "$out" | grep -oP '99%\s+\K\S+')
hz=$(getconf CLK_TCK)
echo "port=$port req/s=$rps p99=$p99 server_cpu_us_per_req=$(echo "scale=2; ($after-$before)*1000000/$hz/$reqs" | bc)"
