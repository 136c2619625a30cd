'use strict';
// The grpc-js twin of EchoServiceImpl (EchoService.cs): same behaviour, so either side can be swapped.
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const definition = protoLoader.loadSync(path.join(__dirname, 'protos', 'echo.proto'), {
  keepCase: false, longs: Number, enums: Number, defaults: true, oneofs: true,
});
const proto = grpc.loadPackageDefinition(definition).exo.test.v1;

function reply(request, index) {
  const payload = request.responseSize > 0 ? Buffer.alloc(request.responseSize) : request.payload;
  return { message: request.message, payload, index };
}

function failure(request) {
  if (!request.failCode) return null;
  // Mirrors a handler that throws: UNKNOWN with a generic message.
  if (request.failMessage === 'throw') return { code: grpc.status.UNKNOWN, details: 'Exception was thrown by handler.' };
  const metadata = new grpc.Metadata();
  metadata.set('x-failed', 'yes');
  return { code: request.failCode, details: request.failMessage, metadata };
}

function echoMetadata(call) {
  const echo = call.metadata.get('x-echo');
  if (echo.length > 0) {
    const headers = new grpc.Metadata();
    headers.set('x-echo', echo[0]);
    call.sendMetadata(headers);
  }
  const trailers = new grpc.Metadata();
  const bin = call.metadata.get('x-echo-bin');
  if (bin.length > 0) trailers.set('x-echo-bin', bin[0]);
  return trailers;
}

function delay(call, ms, onCancel) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { call.removeListener('cancelled', cancel); resolve(true); }, ms);
    const cancel = () => { clearTimeout(timer); onCancel(); resolve(false); };
    call.once('cancelled', cancel);
  });
}

function createServer(log) {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 32 << 20,
    'grpc.max_send_message_length': 32 << 20,
  });
  server.addService(proto.Echo.service, {
    async unary(call, callback) {
      const trailers = echoMetadata(call);
      if (call.request.delayMs > 0 && !(await delay(call, call.request.delayMs, () => log('cancelled:Unary')))) return;
      const failed = failure(call.request);
      if (failed) return callback(failed);
      callback(null, reply(call.request, 0), trailers);
    },
    async serverStream(call) {
      const trailers = echoMetadata(call);
      let cancelled = false;
      call.on('cancelled', () => { cancelled = true; log('cancelled:ServerStream'); });
      for (let i = 0; i < call.request.count && !cancelled; i++) {
        if (i > 0 && call.request.delayMs > 0) await new Promise((r) => setTimeout(r, call.request.delayMs));
        if (!cancelled) call.write(reply(call.request, i));
      }
      if (cancelled) return;
      const failed = failure(call.request);
      if (failed) return call.destroy(Object.assign(new Error(failed.details), failed));
      call.end(trailers);
    },
    clientStream(call, callback) {
      const parts = [];
      let bytes = 0;
      let failed = null;
      call.on('data', (request) => {
        parts.push(request.message);
        bytes += request.payload.length;
        failed = failed || failure(request);
      });
      call.on('cancelled', () => log('cancelled:ClientStream'));
      call.on('end', () => {
        if (failed) return callback(failed);
        callback(null, { message: parts.join(','), index: parts.length, payload: Buffer.from(String(bytes)) });
      });
    },
    bidi(call) {
      let index = 0;
      call.on('data', (request) => {
        const failed = failure(request);
        if (failed) return call.destroy(Object.assign(new Error(failed.details), failed));
        call.write(reply(request, index++));
      });
      call.on('cancelled', () => log('cancelled:Bidi'));
      call.on('end', () => call.end());
    },
  });
  return server;
}

module.exports = { grpc, proto, createServer };
