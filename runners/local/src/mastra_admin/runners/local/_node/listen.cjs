// Preloaded (NODE_OPTIONS=--require) into a server in its sandbox. The sandbox has a
// network namespace of its own, so a port the server bound there could not be reached
// from the host; instead the runner opens the server's port on the host's 127.0.0.1
// and hands the listening socket down as file descriptor MASTRA_LISTEN_FD. The
// server's own listen(PORT) takes that socket (as with systemd's socket activation):
// connections from the router arrive straight from the host's kernel, with no proxy in
// between. Any other listen() is left alone. The variable is removed so that child
// processes do not try to take the socket too.
'use strict';

const net = require('node:net');

const fd = Number(process.env.MASTRA_LISTEN_FD);
const port = Number(process.env.PORT);
delete process.env.MASTRA_LISTEN_FD;

if (Number.isInteger(fd) && fd > 2 && Number.isInteger(port)) {
  const listen = net.Server.prototype.listen;
  let taken = false;
  net.Server.prototype.listen = function listenOnTheRunnersSocket(...args) {
    const first = args[0];
    const wanted = first !== null && typeof first === 'object' ? Number(first.port) : Number(first);
    if (taken || wanted !== port) {
      return listen.apply(this, args);
    }
    taken = true;
    const callback = args.find((arg) => typeof arg === 'function');
    return callback ? listen.call(this, { fd }, callback) : listen.call(this, { fd });
  };
}
