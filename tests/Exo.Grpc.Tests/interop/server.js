'use strict';
// Starts the grpc-js echo server on 127.0.0.1 (port from argv, 0 = any) and prints "listening <port>".
const { grpc, createServer } = require('./echo-service');

const server = createServer((line) => console.log(line));
server.bindAsync(`127.0.0.1:${process.argv[2] || 0}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.log(`listening ${port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
