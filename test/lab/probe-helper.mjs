// Runs inside a lab namespace (node probe-helper.mjs ...) and prints one JSON
// line. Plain JavaScript so that it starts fast without a TypeScript loader.
//   listen tcp|udp ADDR PORT         -> {"ready":true} then serves until killed
//   connect tcp|udp ADDR PORT MS [SRC] -> {"result":"connected"|"refused"|"timeout"|"error","ms":N,"detail":...}
import net from 'node:net';
import dgram from 'node:dgram';

const [mode, proto, addr, portText, msText, source] = process.argv.slice(2);
const port = Number(portText);
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const family = net.isIPv6(addr) ? 'udp6' : 'udp4';

if (mode === 'listen' && proto === 'tcp') {
  const server = net.createServer((s) => { s.end('hostnet-probe\n'); s.on('error', () => {}); });
  server.listen({ host: addr, port }, () => say({ ready: true }));
} else if (mode === 'listen' && proto === 'udp') {
  const sock = dgram.createSocket(family);
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  sock.bind(port, addr, () => say({ ready: true }));
} else if (mode === 'connect') {
  const timeoutMs = Number(msText);
  const started = Date.now();
  const done = (result, detail) => { say({ result, ms: Date.now() - started, detail }); process.exit(0); };
  setTimeout(() => done('timeout'), timeoutMs).unref();
  if (proto === 'tcp') {
    const s = net.connect({ host: addr, port, ...(source ? { localAddress: source } : {}) });
    s.on('connect', () => { s.destroy(); done('connected'); });
    s.on('error', (e) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'error', e.code));
  } else {
    const sock = dgram.createSocket(family);
    sock.on('error', (e) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'error', e.code));
    sock.on('message', () => done('connected'));
    sock.bind({ port: 0, ...(source ? { address: source } : {}) }, () => {
      sock.connect(port, addr, () => {
        const ping = () => sock.send('hostnet-probe');
        ping();
        setInterval(ping, 200).unref();
      });
    });
  }
} else {
  process.stderr.write('usage: probe-helper.mjs listen|connect tcp|udp ADDR PORT [MS] [SRC]\n');
  process.exit(2);
}
