// The reference broker for bench/broker_load: the PeerJS server (npm `peer` 1.0.2) on one Node
// process, listening on 127.0.0.1.
//
//   node bench/node/peerjs_server.mjs [PORT]     (0 or nothing: a free port)
//
// Prints one line once listening, {"ready":true,"port":N}, and runs until SIGTERM or SIGINT.
// Clients connect to ws://127.0.0.1:N/peerjs?key=peerjs&id=ID&token=TOKEN.
//
// Defaults changed so that the server does not limit the benchmark:
//   concurrent_limit 5000 -> 1000000: the hold run opens 10,000 peers (20,000 would be refused
//     past 5,000 with "Server has reached its concurrent user limit").
// Defaults kept: alive_timeout 90 s (the hold run sends a heartbeat every 5 s, as the PeerJS
// client does), expire_timeout 5 s and cleanup_out_msgs 1 s (they only touch messages queued for
// absent peers, which the benchmark never sends), key "peerjs", path "/".
import { PeerServer } from "peer";

const port = Number(process.argv[2] ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: node peerjs_server.mjs [PORT]; '${process.argv[2]}' is not a port`);
  process.exit(2);
}

const peerServer = PeerServer(
  { host: "127.0.0.1", port, path: "/", key: "peerjs", concurrent_limit: 1_000_000 },
  (server) => {
    console.log(JSON.stringify({ ready: true, port: server.address().port }));
  },
);

// A client's socket error must not end the server (nor be printed once per peer).
let errors = 0;
peerServer.on("error", (error) => {
  if (errors++ < 5) {
    console.error(`peerjs_server: ${error.message}`);
  }
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
