// The ceiling for GET /health: a bare uWebSockets.js app (the same binary our server loads)
// answering the bytes our /health answers, with nothing else on the path. Prints {"port":N}.
const path = require('node:path');

const dir = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
const uws = require(path.join(dir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`));
uws
  .App()
  .get('/health', (res) => {
    res.cork(() => res.writeHeader('Content-Type', 'application/json').end('{"status":"ok","transport":"native"}'));
  })
  .listen('127.0.0.1', Number(process.argv[2] ?? 0), (socket) => {
    if (!socket) process.exit(1);
    console.log(JSON.stringify({ port: uws.us_socket_local_port(socket) }));
  });
