# Shared by the benchmark scripts.

# make_work_dir: a scratch folder in `work` and a list `pids` of the processes a benchmark
# starts; both are cleaned up when the script exits (each process ended by its own PID).
make_work_dir() {
  work=$(mktemp -d)
  pids=()
  trap cleanup_work EXIT
}
cleanup_work() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

# wait_for_file FILE: waits up to 5 s for FILE to be non-empty (a daemon's port file).
wait_for_file() {
  for _ in $(seq 1 500); do [[ -s $1 ]] && return 0; sleep 0.01; done
  echo "timed out waiting for $1" >&2
  return 1
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_nginx WWW WORK: nginx (2 workers, no access log) serving the folder WWW on a free
# loopback port, its files under WORK/nginx; appends its PID to the caller's `pids` and sets
# `nginx_port`. Returns once it answers.
start_nginx() {
  local www=$1 work=$2
  mkdir -p "$work/nginx"
  chmod a+rx "$work" "$www"  # nginx workers run as another user when started as root
  nginx_port=$(free_port)
  cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $www;
  }
}
CONF
  nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/error.log" &
  pids+=($!)
  for _ in $(seq 1 500); do curl -s -o /dev/null "http://127.0.0.1:$nginx_port/" && return 0; sleep 0.01; done
  echo "nginx did not start: $(cat "$work/nginx/error.log")" >&2
  return 1
}

# median_ratio LABEL RATIO...: prints the median of the ratios with their spread.
median_ratio() {
  local label=$1
  shift
  printf '%s\n' "$@" | sort -n | awk -v label="$label" '
    { r[NR] = $1 }
    END { m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2;
          printf "median ratio %s: %.3f (min %.3f, max %.3f, %d rounds)\n", label, m, r[1], r[NR], NR }'
}
