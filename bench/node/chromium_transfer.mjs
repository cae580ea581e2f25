// The Chromium reference for PeerNet's data-channel transfer: two pages in headless Chromium send
// N MiB over one ordered, reliable RTCDataChannel, with the signaling relayed through this script.
//
//   node bench/node/chromium_transfer.mjs [--mib N] [--rounds R] [--message-kib K]
//                                         [--candidates loopback|all]
//
// Defaults: 64 MiB, 1 round, 64 KiB messages, loopback. Prints one JSON line per round on stdout:
//   {"stack":"chromium","mib":64,"mib_per_s":...,"open_ms":...,"message_bytes":65536}
// open_ms is from the offerer page creating its RTCPeerConnection to the channel being open there;
// mib_per_s is the bytes over the time from the first send to the receiving page holding every
// byte. Diagnostics (with the candidate pair used) go to stderr. Any failure, or a round over 60 s,
// exits non-zero. Uses Debian's /usr/bin/chromium through playwright-core, with a fresh profile.
//
// Loopback. Chromium leaves 127.0.0.1 out of its ICE candidates unless it runs with
// --allow-loopback-in-peer-connection *and* the page may enumerate the machine's interfaces, which
// it may only with camera or microphone permission (otherwise it offers just the default-route
// address, hidden behind an mDNS name). So each page is http://localhost/ (a secure context;
// Playwright answers the request itself, no server runs) with those permissions granted, mDNS
// hiding is off, and the relay passes on only the UDP candidates on 127.0.0.1: both peers then talk
// over loopback, as the libdatachannel reference and `peernet --loopback` do. `--candidates all`
// relays every candidate instead and lets Chromium choose (on a machine with another interface, the
// address of that one).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { commandLine } from './args.mjs';

const CHROMIUM = '/usr/bin/chromium';
const ROUND_TIMEOUT_MS = 60_000;
const MIB = 1024 * 1024;
const ORIGIN = 'http://localhost';
const LOOPBACK = '127.0.0.1';

const { opts, usage, positiveInt } = commandLine(
  'chromium_transfer',
  'node chromium_transfer.mjs [--mib N] [--rounds R] [--message-kib K] [--candidates loopback|all]',
  {
    mib: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '1' },
    'message-kib': { type: 'string', default: '64' },
    candidates: { type: 'string', default: 'loopback' },
  },
);


const mib = positiveInt('mib');
const rounds = positiveInt('rounds');
const messageBytes = positiveInt('message-kib') * 1024;
if (!['loopback', 'all'].includes(opts.candidates)) usage('--candidates is loopback or all');
const loopbackOnly = opts.candidates === 'loopback';

// Chromium keeps only the last --disable-features it is given, so this one replaces Playwright's
// own list: it repeats the entries of that list that keep Chromium off the network (media-router
// discovery, translation, optimization hints, network time) besides turning off mDNS candidates.
const disabledFeatures = [
  'WebRtcHideLocalIpsWithMdns',
  'MediaRouter',
  'DialMediaRouteProvider',
  'GlobalMediaControls',
  'Translate',
  'OptimizationHints',
  'NetworkTimeServiceQuerying',
  'AimEnabled',
  'LensOverlay',
];

let browser;
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--allow-loopback-in-peer-connection',
      `--disable-features=${disabledFeatures.join(',')}`,
    ],
  });
  console.error(`chromium ${browser.version()}`);
  for (let round = 1; round <= rounds; round++) {
    const result = await withTimeout(runRound(browser, round), ROUND_TIMEOUT_MS, `round ${round}`);
    console.log(JSON.stringify(result));
  }
} catch (err) {
  console.error(`chromium_transfer: ${err.message}`);
  process.exitCode = 1;
  // A Playwright call still in flight when the browser closes can throw from Playwright's own
  // dispatcher: one line for it, not a stack trace, and the exit status stays 1.
  process.on('uncaughtException', (e) => console.error(`chromium_transfer: closing: ${e.message}`));
} finally {
  // Closing the browser ends Chromium and all its children and removes the temporary profile.
  await browser?.close().catch(() => {});
}

// ---------------------------------------------------------------------------------------------

async function runRound(browser, round) {
  // Two browser contexts: two separate profiles in memory, so the pages share nothing (and get
  // their own renderer processes), like two peers.
  const contexts = [];
  try {
    const [offerer, answerer] = await Promise.all(
      ['offerer', 'answerer'].map(async () => {
        const context = await browser.newContext();
        contexts.push(context);
        await context.grantPermissions(['camera', 'microphone'], { origin: ORIGIN });
        const page = await context.newPage();
        await page.route(`${ORIGIN}/**`, (route) =>
          route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>peer</title>' }),
        );
        await page.goto(`${ORIGIN}/`);
        return page;
      }),
    );

    // Any failure reported along the way (a page's error, a relay that fails) ends the round.
    let fail;
    const failed = new Promise((_, reject) => (fail = reject));
    failed.catch(() => {}); // a failure after the round has settled changes nothing
    // Chromium's CPU time, from the first send to the end (the offerer page says when it starts).
    let cpuAtStart;
    const onSending = () => (cpuAtStart = chromiumCpuSeconds());
    await relaySignals(offerer, answerer, { fail, onSending });
    await relaySignals(answerer, offerer, { fail });

    const params = { totalBytes: mib * MIB, messageBytes };
    await answerer.evaluate(pagePeer, { ...params, role: 'answer' });
    await offerer.evaluate(pagePeer, { ...params, role: 'offer' });
    const [sent, received] = await Promise.race([
      Promise.all([offerer, answerer].map((page) => page.evaluate(() => window.peer.result))),
      failed,
    ]);

    const cpu = cpuUsed(cpuAtStart, chromiumCpuSeconds());
    if (received.bytes !== params.totalBytes)
      throw new Error(`received ${received.bytes} bytes, expected ${params.totalBytes}`);
    if (received.checksum !== sent.checksum)
      throw new Error('the received bytes differ from the sent ones (checksum mismatch)');
    const seconds = (received.doneAt - sent.firstSendAt) / 1000;
    const rate = mib / seconds;
    console.error(
      `chromium round ${round}: open ${sent.openMs.toFixed(1)} ms, ${mib} MiB in ` +
        `${seconds.toFixed(3)} s = ${rate.toFixed(1)} MiB/s, ${messageBytes} B messages, ` +
        `Chromium's CPU during it: ${cpu}; pair ${sent.pair}`,
    );
    return {
      stack: 'chromium',
      mib,
      mib_per_s: round2(rate),
      open_ms: round2(sent.openMs),
      message_bytes: messageBytes,
    };
  } finally {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  }
}

// Relays `from`'s signaling messages to `to`, in order. In loopback mode only UDP candidates on
// 127.0.0.1 pass, and a side that has gathered all its candidates without one fails the round at
// once with the reason (ICE would otherwise wait, never failing, for candidates to come).
async function relaySignals(from, to, { fail, onSending }) {
  let queue = Promise.resolve();
  let relayed = 0;
  const dropped = [];
  await from.exposeFunction('sendSignal', (msg) => {
    if (msg.kind === 'error') return fail(new Error(msg.message));
    if (msg.kind === 'sending') return onSending?.();
    if (msg.kind === 'gathered') {
      if (relayed > 0) return;
      if (!loopbackOnly) return fail(new Error('Chromium offered no ICE candidate at all'));
      return fail(
        new Error(
          `Chromium offered no UDP candidate on ${LOOPBACK} ` +
            `(only: ${dropped.join(', ') || 'none'}). It adds loopback only when run with ` +
            '--allow-loopback-in-peer-connection and when the page may enumerate interfaces ' +
            '(camera or microphone permission granted); --candidates all lets it use another ' +
            'interface instead.',
        ),
      );
    }
    if (msg.kind === 'candidate' && loopbackOnly) {
      const [, , protocol, , address] = msg.candidate.candidate.split(' ');
      if (protocol.toLowerCase() !== 'udp' || address !== LOOPBACK) {
        dropped.push(`${protocol} ${address}`);
        return;
      }
    }
    if (msg.kind === 'candidate') relayed++;
    queue = queue.then(() => to.evaluate((m) => window.peer.onSignal(m), msg)).catch(fail);
  });
}

// CPU time (user + system) used so far by every process under this one, that is by Chromium, by
// kind of process (browser, renderer, gpu-process, utility...), from /proc: figures that, unlike
// MiB/s, hardly move when other work shares the machine.
function chromiumCpuSeconds() {
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
  const procs = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      const kind = /[\s\0]--type=([^\s\0]+)/.exec(cmdline)?.[1] ?? 'browser';
      const cpu = (Number(f[11]) + Number(f[12])) / ticks; // utime + stime
      procs.push({ pid: Number(name), ppid: Number(f[1]), kind, cpu });
    } catch {
      // gone meanwhile
    }
  }
  const ours = new Set([process.pid]);
  const byKind = {};
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (!ours.has(p.pid) && ours.has(p.ppid)) {
        ours.add(p.pid);
        byKind[p.kind] = (byKind[p.kind] ?? 0) + p.cpu;
        grew = true;
      }
    }
  }
  return byKind;
}

// "4.10 s (renderer 2.50, browser 1.20, ...)" from two chromiumCpuSeconds() readings.
function cpuUsed(start, end) {
  const used = Object.entries(end)
    .map(([kind, cpu]) => [kind, cpu - (start[kind] ?? 0)])
    .filter(([, cpu]) => cpu >= 0.005)
    .sort((a, b) => b[1] - a[1]);
  const total = used.reduce((sum, [, cpu]) => sum + cpu, 0);
  return `${total.toFixed(2)} s (${used.map(([k, c]) => `${k} ${c.toFixed(2)}`).join(', ')})`;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function round2(x) {
  return Math.round(x * 100) / 100;
}

// ---------------------------------------------------------------------------------------------
// One peer, run inside a page (Playwright sends the function's source). It sets `window.peer`:
// `onSignal` takes the other side's messages and `result` settles when this side is done. The
// page talks back through `window.sendSignal`. The answerer makes its RTCPeerConnection when the
// offer comes. Times are performance.timeOrigin + now(), a clock the two pages share.
function pagePeer({ role, totalBytes, messageBytes }) {
  const HIGH = 4 * 1024 * 1024; // flow control: refill between 1 and 4 MiB queued
  const LOW = 1024 * 1024;
  const count = Math.ceil(totalBytes / messageBytes);
  const lengthOf = (seq) => Math.min(messageBytes, totalBytes - seq * messageBytes);
  const now = () => performance.timeOrigin + performance.now();
  const signal = (msg) => window.sendSignal(msg);

  // A position-sensitive 32-bit checksum (Fletcher-like, on 32-bit words), cheap enough in JS
  // to run on every message as it arrives. Message lengths here are multiples of 4.
  const checksum = (state, bytes) => {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
    let { a, b } = state;
    for (let i = 0; i < words.length; i++) {
      a = (a + words[i]) >>> 0;
      b = (b + a) >>> 0;
    }
    state.a = a;
    state.b = b;
  };

  let resolve;
  let reject;
  const result = new Promise((res, rej) => ((resolve = res), (reject = rej)));
  let pc;
  window.peer = {
    result,
    async onSignal(msg) {
      try {
        if (msg.kind === 'candidate') return await pc.addIceCandidate(msg.candidate);
        if (msg.description.type === 'offer') {
          pc = newPeerConnection();
          pc.ondatachannel = ({ channel }) => receive(channel);
        }
        await pc.setRemoteDescription(msg.description);
        if (msg.description.type === 'offer') {
          await pc.setLocalDescription();
          signal({ kind: 'description', description: pc.localDescription.toJSON() });
        }
      } catch (err) {
        signal({ kind: 'error', message: `${role}: ${msg.kind}: ${err.message}` });
      }
    },
  };
  if (role === 'offer') offer();

  function newPeerConnection() {
    const conn = new RTCPeerConnection({ iceServers: [] });
    conn.onicecandidate = ({ candidate }) => {
      if (candidate) signal({ kind: 'candidate', candidate: candidate.toJSON() });
      else signal({ kind: 'gathered' });
    };
    conn.onconnectionstatechange = () => {
      if (conn.connectionState !== 'failed') return;
      reject(new Error('the ICE/DTLS connection failed'));
      signal({ kind: 'error', message: `${role}: the ICE/DTLS connection failed` });
    };
    return conn;
  }

  async function offer() {
    // The payload: one random block, each message stamped with its sequence number in its first
    // four bytes. It and the expected checksum are made before anything is timed.
    const block = new Uint8Array(messageBytes);
    for (let i = 0; i < messageBytes; i += 65536) {
      crypto.getRandomValues(block.subarray(i, i + 65536)); // 64 KiB at most per call
    }
    const view = new DataView(block.buffer);
    const message = (seq) => {
      view.setUint32(0, seq);
      return lengthOf(seq) === messageBytes ? block : block.subarray(0, lengthOf(seq));
    };
    const expected = { a: 1, b: 0 };
    for (let seq = 0; seq < count; seq++) checksum(expected, message(seq));

    const t0 = performance.now();
    pc = newPeerConnection();
    const dc = pc.createDataChannel('bench'); // ordered and reliable by default
    dc.binaryType = 'arraybuffer';
    dc.onerror = (e) => reject(new Error(`data channel: ${e.error?.message ?? 'error'}`));
    dc.onopen = () => {
      const openMs = performance.now() - t0;
      const max = pc.sctp?.maxMessageSize ?? 0;
      if (max && max < messageBytes)
        return reject(new Error(`messages of ${messageBytes} B exceed the channel's ${max} B`));
      signal({ kind: 'sending' });
      const firstSendAt = now();
      let seq = 0;
      // send() copies the bytes, so the block can be stamped again for the next message.
      const pump = () => {
        try {
          while (seq < count && dc.bufferedAmount < HIGH) dc.send(message(seq++));
        } catch (err) {
          return reject(err);
        }
        if (seq < count) return;
        dc.onbufferedamountlow = null;
        const sum = `${expected.a}:${expected.b}`;
        pairOf().then((pair) => resolve({ openMs, firstSendAt, checksum: sum, pair }), reject);
      };
      dc.bufferedAmountLowThreshold = LOW;
      dc.onbufferedamountlow = pump;
      pump();
    };
    await pc.setLocalDescription();
    signal({ kind: 'description', description: pc.localDescription.toJSON() });
  }

  // Checks the order (sequence numbers) and the content (checksum of the whole stream, compared
  // with the sender's) while counting bytes.
  function receive(dc) {
    dc.binaryType = 'arraybuffer';
    const state = { a: 1, b: 0 };
    let bytes = 0;
    let nextSeq = 0;
    dc.onmessage = ({ data }) => {
      if (typeof data === 'string') return reject(new Error('received a text message'));
      const seq = new DataView(data).getUint32(0);
      if (seq !== nextSeq) return reject(new Error(`message ${seq} came where ${nextSeq} was due`));
      nextSeq++;
      checksum(state, new Uint8Array(data));
      bytes += data.byteLength;
      if (bytes >= totalBytes) resolve({ doneAt: now(), bytes, checksum: `${state.a}:${state.b}` });
    };
  }

  // "address:port <-> address:port (protocol)" of the selected candidate pair.
  async function pairOf() {
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
      const pair = stats.get(s.selectedCandidatePairId);
      const local = stats.get(pair.localCandidateId);
      const remote = stats.get(pair.remoteCandidateId);
      const end = (c) => `${c.address}:${c.port}`;
      return `${end(local)} <-> ${end(remote)} (${local.protocol})`;
    }
    return '?';
  }
}
