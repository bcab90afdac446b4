// Runs inside a lab namespace (node probe-helper.mjs ...) and prints one JSON
// line. Plain JavaScript so that it starts fast without a TypeScript loader.
//   listen tcp|udp ADDR PORT         -> {"ready":true} then serves until killed
//   connect tcp|udp ADDR PORT MS [SRC] -> {"result":"connected"|"refused"|"timeout"|"error","ms":N,"detail":...}
//   echo tcp ADDR PORT               -> {"ready":true}, then echoes every line on every connection until killed
//   stream tcp|udp ADDR PORT MS      -> one connection (one UDP 5-tuple), a line every MS ms;
//                                       per round {"round":N,"ok":true|false} (false: no echo before the next round)
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
} else if (mode === 'echo' && proto === 'tcp') {
  const server = net.createServer((s) => { s.pipe(s); s.on('error', () => {}); });
  server.listen({ host: addr, port }, () => say({ ready: true }));
} else if (mode === 'stream') {
  const interval = Number(msText);
  let round = 0;
  let answered = true;
  let send;
  const tick = () => {
    if (round > 0) say({ round, ok: answered });
    round++;
    answered = false;
    send(`${round}\n`);
  };
  const answer = () => { answered = true; };
  if (proto === 'tcp') {
    const s = net.connect({ host: addr, port });
    s.on('data', answer);
    s.on('error', (e) => { say({ round, ok: false, error: e.code }); process.exit(0); });
    s.on('connect', () => { send = (m) => s.write(m); setInterval(tick, interval); });
  } else {
    const sock = dgram.createSocket(family);
    sock.on('message', answer);
    sock.on('error', () => {});
    sock.connect(port, addr, () => { send = (m) => sock.send(m); setInterval(tick, interval); });
  }
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
  process.stderr.write('usage: probe-helper.mjs listen|connect|echo|stream tcp|udp ADDR PORT [MS] [SRC]\n');
  process.exit(2);
}
