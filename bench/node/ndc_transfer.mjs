// The libdatachannel reference for PeerNet's data-channel transfer: two node-datachannel peers in
// two Node processes send N MiB over one ordered, reliable data channel on loopback.
//
//   node bench/node/ndc_transfer.mjs [--mib N] [--rounds R] [--message-kib K]
//
// Defaults: 64 MiB, 1 round, 64 KiB messages. Prints one JSON line per round on stdout:
//   {"stack":"libdatachannel","mib":64,"mib_per_s":...,"open_ms":...,"message_bytes":65536}
// open_ms is from the offerer creating its PeerConnection to the channel being open on the offerer;
// mib_per_s is the bytes over the time from the first send to the receiver holding every byte.
// Diagnostics go to stderr (NDC_LOG=Debug adds libdatachannel's own log, with each process's
// uptime). Any failure, or a round over 60 s, exits non-zero.
//
// This file is both the parent and the two peers: the parent forks itself twice (`--role offer`
// and `--role answer`) and relays the SDP and the candidates between them over the IPC channel, as
// a signaling server would. Both peers bind to 127.0.0.1 and have no STUN server, so the only
// candidates are host candidates on loopback (without bindAddress, libjuice leaves loopback out
// whenever the machine has another interface).
import { execFileSync, fork } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { commandLine } from './args.mjs';

const ROUND_TIMEOUT_MS = 60_000;
const MIB = 1024 * 1024;
const HIGH = 4 * MIB; // the sender's flow control: refill between LOW and HIGH bytes queued
const LOW = 1 * MIB;
let clockTicks; // for cpuSeconds(); declared up here, before the top-level await below runs

const { opts, usage, positiveInt } = commandLine(
  'ndc_transfer',
  'node ndc_transfer.mjs [--mib N] [--rounds R] [--message-kib K]',
  {
    mib: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '1' },
    'message-kib': { type: 'string', default: '64' },
    role: { type: 'string' }, // internal: set on the two children
  },
);

function fail(message) {
  console.error(`ndc_transfer: ${message}`);
  process.exit(1);
}

const mib = positiveInt('mib');
const rounds = positiveInt('rounds');
const messageBytes = positiveInt('message-kib') * 1024;
const totalBytes = mib * MIB;

if (opts.role === 'offer') await runOfferer();
else if (opts.role === 'answer') await runAnswerer();
else if (opts.role === undefined) await runParent();
else usage(`unknown --role ${opts.role}`);

// ---------------------------------------------------------------------------------------------
// Parent: one pair of fresh peer processes per round, signaling relayed between them.

async function runParent() {
  try {
    for (let round = 1; round <= rounds; round++) {
      const result = await runRound(round);
      console.log(JSON.stringify(result));
    }
  } catch (err) {
    fail(err.message);
  }
}

function runRound(round) {
  const self = fileURLToPath(import.meta.url);
  const common = ['--mib', String(mib), '--message-kib', String(messageBytes / 1024)];
  const spawnPeer = (role) =>
    fork(self, [...common, '--role', role], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const offerer = spawnPeer('offer');
  const answerer = spawnPeer('answer');
  const peers = [offerer, answerer];

  return new Promise((resolve, reject) => {
    let finished = false;
    const ready = new Set();
    const report = {};
    // The relay holds the offerer's candidates until the answer has reached the offerer. Without
    // that, the answerer finishes ICE on loopback within a millisecond of getting them and starts
    // DTLS before the offerer knows its fingerprint: libdatachannel then rejects the handshake
    // ("unknown CA") or loses the first flight and retries a second later.
    let answerDelivered = false;
    const heldCandidates = [];

    // Ends both children (by their own PIDs) and settles the round exactly once.
    const finish = async (error, value) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      await Promise.all(peers.map(stopPeer));
      if (error) reject(error);
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(new Error(`round ${round} did not finish within ${ROUND_TIMEOUT_MS / 1000} s`)),
      ROUND_TIMEOUT_MS,
    );

    const onMessage = (from, to) => (msg) => {
      switch (msg.kind) {
        case 'ready': // the child has loaded node-datachannel and built its payload
          ready.add(from);
          if (msg.expectedDigest) report.expectedDigest = msg.expectedDigest;
          if (ready.size === 2) offerer.send({ kind: 'start' });
          break;
        case 'description':
          to.send(msg);
          if (from === answerer) {
            answerDelivered = true;
            for (const held of heldCandidates) answerer.send(held);
          }
          break;
        case 'candidate':
          if (from === offerer && !answerDelivered) heldCandidates.push(msg);
          else to.send(msg);
          break;
        case 'open':
          report.openMs = msg.openMs;
          report.pair = msg.pair;
          break;
        case 'first-send':
          report.firstSendAt = BigInt(msg.at);
          report.cpuAtStart = peers.map((p) => cpuSeconds(p.pid));
          break;
        case 'received':
          report.doneAt = BigInt(msg.at);
          report.received = msg;
          report.cpuAtEnd = peers.map((p) => cpuSeconds(p.pid));
          settle();
          break;
        case 'error':
          finish(new Error(`${from === offerer ? 'offerer' : 'answerer'}: ${msg.message}`));
          break;
      }
    };
    offerer.on('message', onMessage(offerer, answerer));
    answerer.on('message', onMessage(answerer, offerer));
    for (const child of peers) {
      child.on('error', (err) => finish(err));
      child.on('exit', (code, signal) => {
        if (!finished) finish(new Error(`a peer exited early (code ${code}, signal ${signal})`));
      });
    }

    function settle() {
      const { received, expectedDigest, firstSendAt, doneAt, openMs } = report;
      if (received.bytes !== totalBytes)
        return finish(new Error(`received ${received.bytes} bytes, expected ${totalBytes}`));
      if (received.digest !== expectedDigest)
        return finish(new Error('the received bytes differ from the sent ones (SHA-256 mismatch)'));
      if (firstSendAt === undefined) return finish(new Error('no first-send time came'));
      const seconds = Number(doneAt - firstSendAt) / 1e9;
      const rate = mib / seconds;
      const [sender, receiver] = report.cpuAtEnd.map((end, i) => end - report.cpuAtStart[i]);
      console.error(
        `libdatachannel round ${round}: open ${openMs.toFixed(1)} ms, ${mib} MiB in ` +
          `${seconds.toFixed(3)} s = ${rate.toFixed(1)} MiB/s, ${messageBytes} B messages, ` +
          `CPU during it: sender ${sender.toFixed(2)} s, receiver ${receiver.toFixed(2)} s; ` +
          `pair ${report.pair}`,
      );
      finish(null, {
        stack: 'libdatachannel',
        mib,
        mib_per_s: round2(rate),
        open_ms: round2(openMs),
        message_bytes: messageBytes,
      });
    }
  });
}

// Asks a child to close its connection and exit; kills it (by its PID) if it has not within 5 s.
function stopPeer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    if (child.connected) child.send({ kind: 'close' });
    else child.kill('SIGTERM');
  });
}

// CPU time (user + system, all threads) a process has used so far, from /proc: a figure that,
// unlike MiB/s, hardly moves when other work shares the machine.
function cpuSeconds(pid) {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return NaN; // not Linux, or the process is gone
  }
}

function round2(x) {
  return Math.round(x * 100) / 100;
}

// ---------------------------------------------------------------------------------------------
// Peers. Times are process.hrtime (CLOCK_MONOTONIC), which both children share with the parent.

async function loadPeer() {
  const { default: ndc } = await import('node-datachannel');
  if (process.env.NDC_LOG) {
    ndc.initLogger(process.env.NDC_LOG, (level, line) =>
      console.error(`[${opts.role} ${performance.now().toFixed(1)} ms] ${line}`),
    );
  }
  const send = (msg) => process.send?.(msg);
  const reportError = (message) => send({ kind: 'error', message });
  let closeConnection = () => {};
  process.on('message', (msg) => {
    if (msg.kind === 'close') {
      closeConnection();
      ndc.cleanup();
      process.disconnect();
      process.exit(0);
    }
  });
  // The parent went away (killed or crashed): do not linger.
  process.on('disconnect', () => process.exit(1));
  const newPeerConnection = (name) => {
    const pc = new ndc.PeerConnection(name, { iceServers: [], bindAddress: '127.0.0.1' });
    pc.onLocalDescription((sdp, type) => send({ kind: 'description', sdp, type }));
    pc.onLocalCandidate((candidate, mid) => send({ kind: 'candidate', candidate, mid }));
    pc.onStateChange((state) => {
      if (state === 'failed') reportError('the peer connection failed');
    });
    return pc;
  };
  return {
    send,
    reportError,
    newPeerConnection,
    onClose: (fn) => (closeConnection = fn),
    // Messages from the parent; libdatachannel throws on bad input, which becomes an error report.
    onSignal: (fn) =>
      process.on('message', (msg) => {
        try {
          fn(msg);
        } catch (err) {
          reportError(`${msg.kind}: ${err.message}`);
        }
      }),
  };
}

// Message `seq`: a fixed random block with the sequence number in its first four bytes; the last
// message is shorter when the total is not a multiple of the message size.
function messageCount() {
  return Math.ceil(totalBytes / messageBytes);
}
function messageLength(seq) {
  return Math.min(messageBytes, totalBytes - seq * messageBytes);
}

async function runOfferer() {
  const { send, reportError, newPeerConnection, onClose, onSignal } = await loadPeer();
  const block = randomFillSync(Buffer.alloc(messageBytes));
  const message = (seq) => {
    block.writeUInt32BE(seq, 0);
    return messageLength(seq) === messageBytes ? block : block.subarray(0, messageLength(seq));
  };
  // The digest the receiver must arrive at, computed before anything is timed.
  const hash = createHash('sha256');
  for (let seq = 0; seq < messageCount(); seq++) hash.update(message(seq));
  const expectedDigest = hash.digest('hex');

  let pc;
  let dc;
  onClose(() => {
    dc?.close();
    pc?.close();
  });
  onSignal((msg) => {
    if (msg.kind === 'start') start();
    else if (msg.kind === 'description') pc.setRemoteDescription(msg.sdp, msg.type);
    else if (msg.kind === 'candidate') pc.addRemoteCandidate(msg.candidate, msg.mid);
  });
  send({ kind: 'ready', expectedDigest });

  function start() {
    const t0 = process.hrtime.bigint();
    pc = newPeerConnection('offerer');
    dc = pc.createDataChannel('bench'); // ordered and reliable by default
    dc.onError((err) => reportError(`data channel: ${err}`));
    dc.onOpen(() => {
      const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const { local, remote } = pc.getSelectedCandidatePair() ?? {};
      const end = (c) => `${c.address}:${c.port}`;
      const pair = local ? `${end(local)} <-> ${end(remote)}` : '?';
      send({ kind: 'open', openMs, pair });
      if (dc.maxMessageSize() < messageBytes) {
        reportError(`messages of ${messageBytes} B exceed the channel's ${dc.maxMessageSize()} B`);
        return;
      }
      dc.setBufferedAmountLowThreshold(LOW);
      dc.onBufferedAmountLow(pump);
      send({ kind: 'first-send', at: String(process.hrtime.bigint()) });
      pump();
    });
  }

  // Flow control: keep between LOW and HIGH bytes queued in libdatachannel, refilling when it
  // reports the queue fell to LOW; memory stays bounded whatever the total.
  let seq = 0;
  function pump() {
    try {
      // sendMessageBinary copies the bytes, so the block can be stamped again for the next one.
      while (seq < messageCount() && dc.bufferedAmount() < HIGH) {
        dc.sendMessageBinary(message(seq++));
      }
    } catch (err) {
      reportError(`send: ${err.message}`);
    }
  }
}

async function runAnswerer() {
  const { send, reportError, newPeerConnection, onClose, onSignal } = await loadPeer();
  let pc;
  let dc;
  onClose(() => {
    dc?.close();
    pc?.close();
  });
  onSignal((msg) => {
    if (msg.kind === 'description') {
      pc = newPeerConnection('answerer');
      pc.onDataChannel(receive);
      pc.setRemoteDescription(msg.sdp, msg.type); // the answer follows by itself
    } else if (msg.kind === 'candidate') {
      pc.addRemoteCandidate(msg.candidate, msg.mid);
    }
  });
  send({ kind: 'ready' });

  // Checks the order (sequence numbers) and the content (SHA-256 of the whole stream, compared
  // by the parent with the sender's) while counting bytes.
  function receive(channel) {
    dc = channel;
    const hash = createHash('sha256');
    let bytes = 0;
    let nextSeq = 0;
    dc.onMessage((msg) => {
      if (typeof msg === 'string') return reportError('received a text message');
      const buf = Buffer.isBuffer(msg) ? msg : Buffer.from(msg);
      const seq = buf.readUInt32BE(0);
      if (seq !== nextSeq) return reportError(`message ${seq} arrived where ${nextSeq} was due`);
      nextSeq++;
      hash.update(buf);
      bytes += buf.length;
      if (bytes >= totalBytes) {
        const at = String(process.hrtime.bigint());
        send({ kind: 'received', at, bytes, digest: hash.digest('hex') });
      }
    });
  }
}
