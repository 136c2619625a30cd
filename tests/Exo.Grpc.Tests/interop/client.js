'use strict';
// grpc-js client scenarios against an Exo.Grpc server: `node client.js <host:port> <scenario>`.
// Prints "ok <scenario>" and exits 0 on success; prints the failure and exits 1 otherwise.
const assert = require('assert/strict');
const { grpc, proto } = require('./echo-service');

const [address, scenario] = process.argv.slice(2);
const client = new proto.Echo(address, grpc.credentials.createInsecure(), {
  'grpc.max_receive_message_length': 32 << 20,
  'grpc.max_send_message_length': 32 << 20,
});

const unary = (request, metadata = new grpc.Metadata(), options = {}) => new Promise((resolve, reject) => {
  const call = client.unary(request, metadata, options, (err, reply) => (err ? reject(err) : resolve({ reply, call })));
  call.on('metadata', (m) => { call.headers = m; });
  call.on('status', (s) => { call.trailers = s.metadata; });
});

const readAll = (call) => new Promise((resolve, reject) => {
  const replies = [];
  call.on('data', (r) => replies.push(r));
  call.on('error', reject);
  call.on('end', () => resolve(replies));
});

const scenarios = {
  async unary() {
    const { reply } = await unary({ message: 'hi', payload: Buffer.from([1, 2, 3]) });
    assert.equal(reply.message, 'hi');
    assert.deepEqual([...reply.payload], [1, 2, 3]);
  },
  async metadata() {
    const metadata = new grpc.Metadata();
    metadata.set('x-echo', 'value 1');
    metadata.set('x-echo-bin', Buffer.from([0, 255, 44, 7]));
    const { call } = await unary({ message: 'm' }, metadata);
    await new Promise((r) => setImmediate(r));
    assert.equal(call.headers.get('x-echo')[0], 'value 1');
    assert.deepEqual([...call.trailers.get('x-echo-bin')[0]], [0, 255, 44, 7]);
  },
  async serverStream() {
    const replies = await readAll(client.serverStream({ message: 's', count: 20 }));
    assert.deepEqual(replies.map((r) => r.index), [...Array(20).keys()]);
  },
  async clientStream() {
    const reply = await new Promise((resolve, reject) => {
      const call = client.clientStream((err, r) => (err ? reject(err) : resolve(r)));
      for (let i = 0; i < 4; i++) call.write({ message: `c${i}`, payload: Buffer.alloc(10) });
      call.end();
    });
    assert.equal(reply.message, 'c0,c1,c2,c3');
    assert.equal(reply.index, 4);
    assert.equal(reply.payload.toString(), '40');
  },
  async bidi() {
    const call = client.bidi();
    const done = readAll(call);
    for (let i = 0; i < 30; i++) call.write({ message: `b${i}` });
    call.end();
    const replies = await done;
    assert.deepEqual(replies.map((r) => r.message), [...Array(30).keys()].map((i) => `b${i}`));
  },
  async error() {
    const detail = 'nöt hére: 100% \n gone';
    await assert.rejects(unary({ failCode: 9, failMessage: detail }), (err) => {
      assert.equal(err.code, 9);
      assert.equal(err.details, detail);
      assert.equal(err.metadata.get('x-failed')[0], 'yes');
      return true;
    });
    await assert.rejects(unary({ failCode: 1, failMessage: 'throw' }), (err) => {
      assert.equal(err.code, grpc.status.UNKNOWN);
      assert.ok(!err.details.includes('secret'));
      return true;
    });
  },
  async deadline() {
    await assert.rejects(unary({ delayMs: 20000 }, new grpc.Metadata(), { deadline: Date.now() + 300 }),
      (err) => { assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED); return true; });
  },
  async cancel() {
    const call = client.bidi();
    call.write({ message: 'x' });
    await new Promise((resolve) => call.once('data', resolve));
    const status = new Promise((resolve) => call.on('error', resolve));
    call.cancel();
    assert.equal((await status).code, grpc.status.CANCELLED);
  },
  async large() {
    const payload = Buffer.alloc(16 << 20);
    for (let i = 0; i < payload.length; i += 4096) payload[i] = i % 251;
    const { reply } = await unary({ payload });
    assert.ok(Buffer.compare(reply.payload, payload) === 0);
  },
  async unimplemented() {
    const Missing = grpc.makeGenericClientConstructor({
      nope: {
        path: '/exo.test.v1.Missing/Nope', requestStream: false, responseStream: false,
        requestSerialize: (b) => b, requestDeserialize: (b) => b, responseSerialize: (b) => b, responseDeserialize: (b) => b,
      },
    });
    const missing = new Missing(address, grpc.credentials.createInsecure());
    await assert.rejects(new Promise((resolve, reject) => missing.nope(Buffer.alloc(0), (e, r) => (e ? reject(e) : resolve(r)))),
      (err) => { assert.equal(err.code, grpc.status.UNIMPLEMENTED); return true; });
  },
  async vanish() {
    // Opens a bidi stream and then waits to be killed, so the server sees its client vanish mid-stream.
    const call = client.bidi();
    call.on('error', () => {});
    call.write({ message: 'x' });
    await new Promise((resolve) => call.once('data', resolve));
    console.log('ready');
    await new Promise(() => {});
  },
};

(async () => {
  if (!scenarios[scenario]) throw new Error(`unknown scenario '${scenario}'`);
  await scenarios[scenario]();
  console.log(`ok ${scenario}`);
  process.exit(0);
})().catch((err) => {
  console.log(`fail ${scenario}: ${err.stack || err}`);
  process.exit(1);
});
