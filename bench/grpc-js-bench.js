'use strict';
// grpc-js <-> grpc-js reference for Exo.Grpc.Bench: the same 8 KiB ping-pong and one-way stream, server in a
// child process (so each side has its own event loop, as client and server threads do in the .NET run).
// Prints one JSON line with the same metric names as the .NET table.
const path = require('path');
const { fork } = require('child_process');
const grpc = require(path.join(__dirname, '..', 'tests', 'Exo.Grpc.Tests', 'interop', 'node_modules', '@grpc', 'grpc-js'));

const identity = (b) => b;
const definition = {
  pingPong: { path: '/bench.Bench/PingPong', requestStream: true, responseStream: true,
    requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  stream: { path: '/bench.Bench/Stream', requestStream: true, responseStream: false,
    requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
};
const limits = { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 };

function serve() {
  const server = new grpc.Server(limits);
  server.addService(definition, {
    pingPong(call) {
      call.on('data', (m) => call.write(m));
      call.on('end', () => call.end());
    },
    stream(call, callback) {
      let count = 0;
      call.on('data', () => { count++; });
      call.on('end', () => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(count)); callback(null, b); });
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => process.send({ port }));
  process.on('disconnect', () => process.exit(0));
}

async function pingPong(client, payload, count) {
  const call = client.pingPong();
  const warmup = Math.min(2000, Math.floor(count / 5));
  const rtts = [];
  let pending = null;
  call.on('data', () => pending());
  for (let i = -warmup; i < count; i++) {
    const start = process.hrtime.bigint();
    await new Promise((resolve) => { pending = resolve; call.write(payload); });
    if (i >= 0) rtts.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  call.end();
  rtts.sort((a, b) => a - b);
  return rtts;
}

function sendAll(client, payload, count) {
  return new Promise((resolve, reject) => {
    const call = client.stream((err, reply) => (err ? reject(err) : resolve(Number(reply.readBigInt64LE()))));
    let i = 0;
    const pump = () => {
      while (i < count) {
        i++;
        if (!call.write(payload)) return call.once('drain', pump);
      }
      call.end();
    };
    pump();
  });
}

async function main() {
  const [pingPongs, streamed] = process.argv.slice(2).map(Number);
  const child = fork(__filename, ['serve'], { stdio: 'inherit' });
  const { port } = await new Promise((resolve) => child.once('message', resolve));
  const Client = grpc.makeGenericClientConstructor(definition);
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), limits);
  const payload = Buffer.alloc(8 * 1024, 7);

  const rtts = await pingPong(client, payload, pingPongs);
  await sendAll(client, payload, Math.min(5000, Math.floor(streamed / 5)));
  const start = process.hrtime.bigint();
  const received = await sendAll(client, payload, streamed);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (received !== streamed) throw new Error(`server counted ${received} of ${streamed}`);

  const pct = (p) => Math.round(rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))]).toLocaleString('en-US');
  console.log(JSON.stringify({
    'ping-pong median (µs)': pct(0.5),
    'ping-pong p99 (µs)': pct(0.99),
    'stream msgs/s': Math.round(streamed / seconds).toLocaleString('en-US'),
    'stream MB/s': ((streamed * payload.length) / seconds / 1e6).toFixed(1),
  }));
  client.close();
  child.disconnect();
}

if (process.argv[2] === 'serve') serve();
else main().catch((err) => { console.error(err); process.exit(1); });
